"""lexalign: culturally align language models on word-association norms (the ALIGN study)."""

from lexalign.core.errors import LexalignError

__all__ = ["LexalignError"]
__version__ = "0.1.0"
