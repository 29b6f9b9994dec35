"""Tokenizers: the zoo of real offline tokenizers (zoo.py, with engines.py and files.py),
what a page does with them (tokenization.py), and training your own (training.py, merges.py).

Notes (how it works, what is left out, measured figures): docs/tokenizers.md.
"""

# The public API other topics use (backends.experiments).
from backends.tokenizers.engines import byte_level_decoder, is_byte_level
from backends.tokenizers.tokenization import token_strings, tokenize

__all__ = ["byte_level_decoder", "is_byte_level", "token_strings", "tokenize"]
