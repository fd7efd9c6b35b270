"""tests/generate uses the tiny Llama and its template from the root conftest
(``tests/tiny_models.py``)."""
