"""The FACS Action Unit table as text, in our own words, read by ``hiva.facs`` into ``AUS``.

Sources: the Facial Action Coding System manual (Ekman, Friesen & Hager, 2002) as summarised in
the public literature; every line is a paraphrase written for this project and was reviewed
against the manual's description of the AU (issue 34): each AU's first cue is its defining
movement, and each AU says what tells it from its nearest neighbour.

One block per AU:
   <number>. <name> (<region>; often with <AUs it commonly co-occurs with>)
      muscles: <muscle>; <muscle>            (or the relaxation behind the action)
      unlike <N>: <what tells it from AU N, its nearest neighbour, as one clause>
      cue words: <pattern> | <pattern>       (words that say so: a row must use one)
      opens with: <phrase> | <phrase>        (optional: ways to name the part that moves, each
                                              the start of a note the model writes on)
      - <a visible cue, a short clause>      (one line each; the first is the defining one)

A cue-word pattern is a regular expression matched at a word start ("dimpl" finds "dimples").
Prompts and the description verifier (``hiva.corpora.verify``) are built from this text: an edit
changes them, and every corpus generated after it.
"""

TABLE = """
1. Inner Brow Raiser (brows; often with 2, 4, 15)
   muscles: frontalis, pars medialis
   unlike 2: only the inner ends of the brows rise, not the outer ends
   cue words: inner | medial | (?:centre|center|middle) of the (?:forehead|brows?)
   opens with: the inner ends of the eyebrows | the inner brows | the medial ends of the brows
   - the inner ends of the eyebrows are pulled upward
   - horizontal wrinkles appear in the centre of the forehead
   - the brows take an oblique, slanted shape, high at their inner ends

2. Outer Brow Raiser (brows; often with 1, 5, 26)
   muscles: frontalis, pars lateralis
   unlike 1: only the outer ends of the brows rise, not the inner ends
   cue words: outer | lateral | arch
   opens with: the outer ends of the eyebrows | the outer brows | the lateral ends of the brows
   - the outer ends of the eyebrows are lifted
   - the lateral part of the brow arches upward
   - short wrinkles may form above the outer brows

4. Brow Lowerer (brows; often with 7, 9, 17, 23)
   muscles: corrugator supercilii; depressor supercilii; procerus
   unlike 7: the brows themselves come down and together, not only the lids
   cue words: [brow down] | [brow in] | [brow together] | furrow | frown | knit
   opens with: the eyebrows | the brows | both brows
   - the eyebrows are pulled down and drawn together
   - vertical furrows form between the brows
   - the lowered brows narrow the eye opening from above

5. Upper Lid Raiser (eyes; often with 1, 2, 26)
   muscles: levator palpebrae superioris
   unlike 7: the upper lid rises and the eye widens, nothing tightens
   cue words: [upper lid up] | wide | white of the eye | stare | staring
   - the upper eyelid is raised so more of the eyeball shows
   - white of the eye may become visible above the iris
   - the eyes look wide and staring

6. Cheek Raiser (cheeks; often with 12, 25)
   muscles: orbicularis oculi, pars orbitalis
   unlike 7: the cheeks lift and crow's-feet form around the eye, the lids are not tightened
   cue words: cheek | crow
   opens with: the cheeks | the upper cheeks | the cheeks below the eyes
   - the cheeks are lifted and bulge under the eyes
   - crow's-feet wrinkles radiate from the outer eye corners
   - the lower eyelid is pushed up from below and the eyes narrow

7. Lid Tightener (eyes; often with 4, 6, 23)
   muscles: orbicularis oculi, pars palpebralis
   unlike 6: the eyelids themselves tighten, the cheeks do not lift
   cue words: tight | tense | taut | straighten
   opens with: the eyelids | the lower eyelids | the lids | the lower lids
   - the eyelids tighten and the eye aperture narrows
   - the lower lid is raised and straightened
   - the eyes look squinting without cheek lift

9. Nose Wrinkler (nose; often with 4, 10, 17)
   muscles: levator labii superioris alaeque nasi
   unlike 10: the nose itself wrinkles along its sides and bridge
   cue words: wrinkl | crinkl | scrunch
   - wrinkles appear along the sides and bridge of the nose
   - the nostrils are pulled upward
   - the upper lip rises slightly with the nose

10. Upper Lip Raiser (mouth; often with 9, 17, 25)
   muscles: levator labii superioris
   unlike 9: the upper lip rises while the bridge of the nose stays smooth
   cue words: [upper lip up] | upper teeth
   opens with: the upper lip | the centre of the upper lip
   - the upper lip is drawn straight up
   - the nasolabial furrow deepens
   - the upper teeth may be exposed

11. Nasolabial Deepener (cheeks; often with 12, 15)
   muscles: zygomaticus minor
   unlike 10: only the upper part of the nasolabial furrow deepens, the lip barely moves
   cue words: nasolabial
   - the upper part of the nasolabial furrow deepens
   - the skin beside the nose wings is pulled up and out
   - the upper lip is raised a little at its outer parts

12. Lip Corner Puller (mouth; often with 6, 25, 26)
   muscles: zygomaticus major
   unlike 20: the lip corners go up toward the cheekbones, not straight out
   cue words: [lip corner up] | smil | cheekbone
   opens with: the lip corners | the corners of the mouth | the mouth corners
   - the lip corners are pulled up and outward toward the cheekbones
   - the mouth widens into a smile shape
   - the nasolabial furrow deepens and curves

13. Sharp Lip Puller (mouth; often with 6, 12)
   muscles: levator anguli oris (caninus)
   unlike 12: the lip corners go sharply up and the cheeks puff beneath them
   cue words: sharp | puff
   - the lip corners are pulled sharply upward
   - the cheeks puff beneath the lip corners
   - the upper lip narrows at its sides

14. Dimpler (mouth; often with 12, 17, 24)
   muscles: buccinator
   unlike 20: the lip corners tighten and dimple, the mouth is not stretched wide
   cue words: dimpl
   opens with: dimples | small dimples | a dimple
   - dimples form in the cheeks just beyond the lip corners as they tighten
   - the lip corners are tightened and pulled inward
   - the skin beside the lip corners bulges slightly

15. Lip Corner Depressor (mouth; often with 1, 4, 17)
   muscles: depressor anguli oris (triangularis)
   unlike 16: the lip corners are pulled down, not the whole lower lip
   cue words: [lip corner down] | downturn | down-turn
   opens with: the lip corners | the corners of the mouth | the mouth corners
   - the lip corners are pulled downward
   - the mouth takes a downturned, sad shape
   - the skin below the lip corners bulges or wrinkles

16. Lower Lip Depressor (mouth; often with 10, 25, 26)
   muscles: depressor labii inferioris
   unlike 15: the whole lower lip is pulled down, not only the corners
   cue words: [lower lip down] | lower teeth
   - the lower lip is pulled down and slightly outward
   - the lower teeth may be exposed
   - the chin skin is stretched downward

17. Chin Raiser (chin; often with 4, 15, 24)
   muscles: mentalis
   unlike 24: the chin pushes the lower lip up and the chin skin wrinkles
   cue words: chin
   opens with: the chin boss | the chin | the skin of the chin
   - the chin boss is pushed upward
   - the lower lip is pushed up and may protrude
   - the chin skin wrinkles into a dimpled, orange-peel texture

18. Lip Pucker (mouth; often with 17, 22)
   muscles: incisivii labii superioris; incisivii labii inferioris
   unlike 22: the lips gather into a small rounded pucker, they do not flare
   cue words: pucker | purse | gather | kiss
   - the lips are pushed forward and gathered
   - the mouth opening becomes small and rounded
   - fine vertical lines appear on the lips

19. Tongue Show (mouth; often with 25, 26)
   muscles: genioglossus; relaxation of orbicularis oris
   unlike 25: the tongue shows between the parted lips
   cue words: tongue
   - the tongue is pushed forward between the lips
   - the tip of the tongue shows in front of the teeth
   - the lips part around the protruding tongue

20. Lip Stretcher (mouth; often with 1, 2, 4, 5, 25)
   muscles: risorius; platysma
   unlike 12: the lip corners go straight out toward the ears, not up
   cue words: stretch | horizontal | sideways | toward the ears | straight out
   - the lip corners are pulled straight out toward the ears
   - the mouth is elongated and flattened horizontally
   - the skin beyond the lip corners is stretched

22. Lip Funneler (mouth; often with 18, 25)
   muscles: orbicularis oris
   unlike 18: the lips flare outward into a funnel instead of gathering
   cue words: funnel | flare | trumpet
   - the lips are flared outward into a funnel
   - the lips push forward and the teeth may show
   - the mouth forms a trumpet-like shape

23. Lip Tightener (mouth; often with 4, 7, 24)
   muscles: orbicularis oris
   unlike 24: the lips tighten and their red parts thin, they are not pressed together
   cue words: tight | tense | taut | thin | narrow
   opens with: the lips | the red parts of the lips | both lips | the lip margins
   - the lips are tightened and their red parts narrow
   - the lip margins roll slightly inward and look thin
   - small bulges may form around the tense lips

24. Lip Pressor (mouth; often with 17, 23)
   muscles: orbicularis oris
   unlike 23: the closed lips are pressed against each other
   cue words: press
   opens with: the closed lips | the lips | both lips
   - the closed lips are pressed firmly together
   - the skin above and below the pressed lips bulges
   - the lower lip is pushed up against the upper lip

25. Lips Part (mouth; often with 12, 26, 10)
   muscles: depressor labii inferioris; relaxation of mentalis; relaxation of orbicularis oris
   unlike 26: the lips part while the jaw stays where it was
   cue words: [lip out] | separat | apart | part(?:ed|ing)?\\b
   - the lips separate slightly
   - the teeth or the inside of the mouth may become visible
   - the jaw itself need not drop

26. Jaw Drop (jaw; often with 25, 5, 1, 2)
   muscles: masseter relaxed; temporalis relaxed; internal pterygoid relaxed
   unlike 25: the jaw itself drops and the mouth falls open
   cue words: jaw
   - the jaw lowers and the mouth opens loosely
   - the space between the teeth widens
   - the lower face lengthens without stretching the lips

27. Mouth Stretch (jaw; often with 1, 2, 5)
   muscles: pterygoids; digastric
   unlike 26: the jaw is pulled down actively and the mouth is stretched wide
   cue words: stretch | wide
   - the mouth is opened wide by actively pulling the jaw down
   - the lips and cheeks are stretched tight
   - the mouth opening becomes tall and oval

28. Lip Suck (mouth; often with 17, 24)
   muscles: orbicularis oris
   unlike 24: the lips are sucked in over the teeth, not pressed together
   cue words: suck
   - the lips are sucked inward over the teeth
   - the red parts of the lips disappear from view
   - the skin around the mouth is drawn in

32. Lip Bite (mouth; often with 25, 17)
   muscles: masseter; temporalis
   unlike 28: the teeth bite on one lip
   cue words: bit(?:e|es|ten|ing)\\b
   - the teeth bite down on one of the lips
   - the bitten lip is pulled in and partly hidden
   - the skin beside the bitten lip bunches

38. Nostril Dilator (nose; often with 9, 10, 26)
   muscles: nasalis, pars alaris
   unlike 39: the nostrils widen instead of narrowing
   cue words: flare | dilat | widen
   - the nostrils flare outward
   - the nostril openings widen and round
   - the wings of the nose lift away from the cheeks

39. Nostril Compressor (nose; often with 4, 9)
   muscles: nasalis, pars transversa; depressor septi
   unlike 38: the nostrils narrow instead of widening
   cue words: compress | narrow | pinch | slit
   - the nostrils are narrowed and pressed in
   - the nostril openings become slit-like
   - the wings of the nose draw toward the septum

43. Eyes Closed (eyes; often with 6, 7)
   muscles: relaxation of levator palpebrae superioris; orbicularis oculi, pars palpebralis
   unlike 45: the eyes close and stay closed
   cue words: closed | shut
   - the upper eyelids droop until the eyes are closed
   - the eyelids rest together without squeezing
   - no tension lines form around the eyes

45. Blink (eyes; often with 5)
   muscles: relaxation of levator palpebrae superioris; orbicularis oculi, pars palpebralis
   unlike 43: the eyes close only for a moment and reopen
   cue words: blink | reopen | brief | quick | moment
   - the eyes close and reopen quickly
   - the eyelids meet for a brief moment
   - the eye region returns to neutral at once

46. Wink (eyes; often with 6, 12)
   muscles: orbicularis oculi
   unlike 45: only one eye closes
   cue words: one eye | one-sided | one side | wink | unilateral
   - one eye closes briefly while the other stays open
   - the closure is one-sided and deliberate
   - the cheek on the winking side may lift a little
"""
