"""Face data: manifests, folds, transforms, datasets, synthetic AU faces, importers, alignment.

Light to import: the heavy libraries (torch, torchvision, cv2, mediapipe) load inside functions.
"""
