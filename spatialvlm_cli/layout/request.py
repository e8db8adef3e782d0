"""What a prompt asks for, and the part of a layout that answers it.

SpatialLM's prompt names a detect type (`all`, `arch`: walls, doors and windows, `object`: boxes) and may name box
categories. Its models learn to answer with only those entities, but a model can still write others: our small
room models write boxes under `-d arch` now and then and do not read category names at all. `restrict_layout` keeps
what was asked for, so a written layout always answers its request; `infer` warns with the number of entities it
dropped, which is the model's own disobedience (training's held-out curve counts it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from spatialvlm_cli.layout.entities import Layout

DETECT_TYPES = ("all", "arch", "object")

# How often training draws each kind of request when prompts are mixed (SpatialLM's three detect types, category prompts
# with either 'all' or 'object'), at the default share of 'all'; another share rescales the rest alike.
REQUEST_MIX: tuple[tuple[str, float], ...] = (
    ("all", 0.55), ("arch", 0.15), ("object", 0.10), ("categories-all", 0.10), ("categories-object", 0.10),
)
DEFAULT_ALL_SHARE = REQUEST_MIX[0][1]


@dataclass(frozen=True)
class Request:
    """SpatialLM's detect type ('all' | 'arch' | 'object') and category names (boxes of other classes are not
    asked for; ignored for 'arch', as upstream)."""

    detect_type: str = "all"
    categories: tuple[str, ...] = ()

    @property
    def wants_arch(self) -> bool:
        """Whether walls, doors and windows are asked for."""
        return self.detect_type != "object"

    def wants_box(self, class_name: str) -> bool:
        """Whether a box of this class is asked for."""
        return self.detect_type != "arch" and (not self.categories or class_name in self.categories)


ALL = Request()


def restrict_layout(layout: Layout, request: Request) -> tuple[Layout, int]:
    """(the part of `layout` that answers `request`, the number of entities left out). When boxes are left out the
    kept ones are renumbered 0.. in their order, as an answer to the request numbers them; otherwise ids stay."""
    arch = (layout.walls, layout.doors, layout.windows) if request.wants_arch else ([], [], [])
    boxes = [box for box in layout.bboxes if request.wants_box(box.class_name)]
    if len(boxes) < len(layout.bboxes):
        boxes = [dataclasses.replace(box, id=index) for index, box in enumerate(boxes)]
    kept = Layout(walls=list(arch[0]), doors=list(arch[1]), windows=list(arch[2]), bboxes=boxes)
    return kept, len(layout) - len(kept)
