"""Backbone families: one module per architecture, and the registry that picks one for a spec.

Example:

```python
[family.name for family in tftune.families.FAMILIES]
```
"""

from tftune.families.base import (
    HEAD,
    PRETRAINED,
    BackboneUnavailableError,
    Family,
    LayerGroup,
    LocalDirectory,
    Modality,
    read_local_directory,
)
from tftune.families.image import IMAGE, ImageFamily, ResolvedImage, resize_image
from tftune.families.registry import FAMILIES, family_of, get_family, known_backbones, resolve_backbone
from tftune.families.text import (
    POOLER,
    POOLINGS,
    TEXT,
    ResolvedText,
    TextFamily,
    TextPreprocessor,
    TokenPooling,
    offline_text_backbone,
)

__all__ = [
    "FAMILIES",
    "HEAD",
    "IMAGE",
    "POOLER",
    "POOLINGS",
    "PRETRAINED",
    "TEXT",
    "BackboneUnavailableError",
    "Family",
    "ImageFamily",
    "LayerGroup",
    "LocalDirectory",
    "Modality",
    "ResolvedImage",
    "ResolvedText",
    "TextFamily",
    "TextPreprocessor",
    "TokenPooling",
    "family_of",
    "get_family",
    "known_backbones",
    "read_local_directory",
    "resize_image",
    "resolve_backbone",
    "offline_text_backbone",
]
