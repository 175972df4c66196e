"""SynthKitchen vocabulary and task catalogue: object classes, verbs, variants and task templates.

A task template is an ordered list of blocks of steps; a task instance keeps every required block,
keeps each optional block with its probability, and may reorder consecutive blocks that share a
nonzero ``group`` (e.g. which vegetable of a salad is prepared first).
"""

from __future__ import annotations

from dataclasses import dataclass

OBJECT_CLASSES: tuple[str, ...] = (
    "hand", "knife", "spoon", "whisk", "cutting_board", "bowl", "pan", "plate", "cup", "bottle",
    "kettle", "tomato", "cucumber", "carrot", "bread", "egg", "apple",
)
VERBS: tuple[str, ...] = (
    "place", "cut", "slice", "peel", "pour", "stir", "whisk", "crack", "flip", "spread", "sprinkle",
)
# Per-frame action labels: index 0 is background (no step in progress), then VERBS in order.
ACTION_LABELS: tuple[str, ...] = ("background", *VERBS)

# Colour variants per class: (variant name, main RGB, secondary RGB). Food skins are fixed hues
# with small per-instance jitter applied by the planner.
VARIANTS: dict[str, tuple[tuple[str, tuple[int, int, int], tuple[int, int, int]], ...]] = {
    "cutting_board": (("oak", (205, 160, 105), (0, 0, 0)), ("bamboo", (220, 185, 125), (0, 0, 0)),
                      ("walnut", (150, 100, 65), (0, 0, 0))),
    "bowl": (("white", (238, 236, 230), (0, 0, 0)), ("blue", (70, 120, 200), (0, 0, 0)),
             ("green", (90, 170, 110), (0, 0, 0)), ("red", (200, 70, 60), (0, 0, 0))),
    "cup": (("white", (240, 240, 236), (0, 0, 0)), ("yellow", (240, 200, 60), (0, 0, 0)),
            ("teal", (60, 160, 160), (0, 0, 0)), ("red", (190, 50, 50), (0, 0, 0))),
    "plate": (("white", (246, 246, 242), (0, 0, 0)), ("cream", (240, 230, 200), (0, 0, 0)),
              ("blue rim", (225, 232, 245), (0, 0, 0))),
    "pan": (("black", (45, 45, 50), (0, 0, 0)), ("grey", (70, 72, 78), (0, 0, 0))),
    "bottle": (("milk", (248, 248, 244), (60, 110, 200)), ("oil", (225, 180, 40), (40, 120, 60))),
    "kettle": (("steel", (185, 188, 196), (0, 0, 0)), ("red", (200, 45, 40), (0, 0, 0)),
               ("white", (235, 235, 235), (0, 0, 0))),
    "knife": (("black", (35, 35, 35), (0, 0, 0)), ("wood", (140, 90, 50), (0, 0, 0))),
    "spoon": (("steel", (190, 193, 200), (0, 0, 0)), ("wood", (190, 140, 85), (0, 0, 0))),
    "whisk": (("black", (40, 40, 40), (0, 0, 0)), ("red", (180, 40, 40), (0, 0, 0))),
    "tomato": (("red", (215, 40, 30), (0, 0, 0)),),
    "cucumber": (("green", (45, 115, 45), (0, 0, 0)),),
    "carrot": (("orange", (235, 115, 25), (0, 0, 0)),),
    "apple": (("red", (195, 30, 40), (0, 0, 0)), ("green", (140, 195, 60), (0, 0, 0))),
    "bread": (("white", (200, 140, 70), (0, 0, 0)), ("brown", (160, 100, 50), (0, 0, 0))),
    "egg": (("white", (246, 242, 232), (0, 0, 0)), ("brown", (205, 160, 115), (0, 0, 0))),
}
SUBSTANCES: dict[str, dict[str, tuple[int, int, int]]] = {
    "spread": {"butter": (250, 225, 120), "jam": (180, 30, 50), "peanut butter": (175, 115, 55)},
    "season": {"salt": (252, 252, 252), "pepper": (40, 35, 30)},
    "sugar": {"sugar": (252, 252, 250)},
    "flour": {"flour": (248, 246, 240)},
}
CONTAINERS = frozenset({"cutting_board", "bowl", "pan", "plate", "cup", "bottle", "kettle"})
TOOLS = frozenset({"knife", "spoon", "whisk"})


@dataclass(frozen=True)
class StepTemplate:
    """One step: ``verb`` acting on prop roles ``(patient, tool or destination)``.

    ``description`` is the clean step text; ``noun``/``dest`` are how a narrator names the patient
    and the destination (``dest`` carries its preposition, e.g. "into the bowl"). ``{spread}``,
    ``{season}``, ``{sugar}``, ``{flour}`` and ``{liquid}`` are filled per instance.
    """

    verb: str
    roles: tuple[str, ...]
    description: str
    noun: str
    dest: str = ""
    substance: str = ""  # SUBSTANCES key this step uses (spread/sprinkle colour)

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise ValueError(f"unknown verb {self.verb!r}")


@dataclass(frozen=True)
class Block:
    """Steps kept or dropped together; blocks sharing a nonzero ``group`` may swap order."""

    steps: tuple[StepTemplate, ...]
    p_include: float = 1.0
    group: int = 0


@dataclass(frozen=True)
class TaskTemplate:
    """A task type: its props (role -> (class, forced variant or "")) and its blocks."""

    name: str
    title: str
    props: dict[str, tuple[str, str]]
    blocks: tuple[Block, ...]


S, B = StepTemplate, Block


def _prep(veg: str, cut: str, dest_role: str, dest: str, group: int, p: float = 1.0, peel: bool = False) -> Block:
    """Place a vegetable on the board, optionally peel it, cut it, move it to ``dest_role``."""
    steps = [S("place", (veg, "board"), f"put the {veg} on the cutting board", veg, "on the cutting board")]
    if peel:
        steps.append(S("peel", (veg, "knife"), f"peel the {veg}", veg))
    word = "slice" if cut == "slice" else "cut"
    steps.append(S(cut, (veg, "knife"), f"{word} the {veg}" + ("" if cut == "slice" else " into pieces"), veg))
    prep = "into" if dest_role == "bowl" else "on"
    steps.append(S("place", (veg, dest_role), f"put the {veg} {prep} the {dest}", veg, f"{prep} the {dest}"))
    return B(tuple(steps), p, group)


TASKS: tuple[TaskTemplate, ...] = (
    TaskTemplate("make_sandwich", "make a sandwich", {
        "board": ("cutting_board", ""), "bread": ("bread", ""), "tomato": ("tomato", ""),
        "cucumber": ("cucumber", ""), "knife": ("knife", ""), "plate": ("plate", "")}, (
        B((S("place", ("bread", "board"), "put a slice of bread on the cutting board", "bread", "on the board"),
           S("spread", ("bread", "knife"), "spread {spread} on the bread", "{spread}", "on the bread", "spread"))),
        B((S("place", ("tomato", "board"), "put the tomato on the cutting board", "tomato", "on the board"),
           S("slice", ("tomato", "knife"), "slice the tomato", "tomato"),
           S("place", ("tomato", "bread"), "put the tomato slices on the bread", "tomato", "on the bread")), 1.0, 1),
        B((S("place", ("cucumber", "board"), "put the cucumber on the cutting board", "cucumber", "on the board"),
           S("slice", ("cucumber", "knife"), "slice the cucumber", "cucumber"),
           S("place", ("cucumber", "bread"), "put the cucumber slices on the bread", "cucumber", "on the bread")),
          0.5, 1),
        B((S("place", ("bread", "plate"), "put the sandwich on the plate", "sandwich", "on the plate"),)),
    )),
    TaskTemplate("make_scrambled_eggs", "make scrambled eggs", {
        "bowl": ("bowl", ""), "pan": ("pan", ""), "egg": ("egg", ""), "egg2": ("egg", ""),
        "bottle": ("bottle", "milk"), "whisk": ("whisk", ""), "spoon": ("spoon", ""), "plate": ("plate", "")}, (
        B((S("crack", ("egg", "bowl"), "crack an egg into the bowl", "egg", "into the bowl"),)),
        B((S("crack", ("egg2", "bowl"), "crack a second egg into the bowl", "egg", "into the bowl"),), 0.6),
        B((S("pour", ("bottle", "bowl"), "pour a little milk into the bowl", "milk", "into the bowl"),), 0.6),
        B((S("sprinkle", ("bowl",), "season the eggs with {season}", "{season}", "on the eggs", "season"),), 0.5),
        B((S("whisk", ("bowl", "whisk"), "whisk the eggs", "eggs"),
           S("pour", ("bowl", "pan"), "pour the eggs into the pan", "eggs", "into the pan"),
           S("stir", ("pan", "spoon"), "stir the eggs in the pan", "eggs"),
           S("pour", ("pan", "plate"), "tip the scrambled eggs onto the plate", "eggs", "onto the plate"))),
    )),
    TaskTemplate("make_salad", "make a salad", {
        "board": ("cutting_board", ""), "cucumber": ("cucumber", ""), "tomato": ("tomato", ""),
        "carrot": ("carrot", ""), "knife": ("knife", ""), "bowl": ("bowl", ""), "bottle": ("bottle", "oil"),
        "spoon": ("spoon", "")}, (
        _prep("cucumber", "slice", "bowl", "bowl", 1),
        _prep("tomato", "cut", "bowl", "bowl", 1),
        _prep("carrot", "slice", "bowl", "bowl", 1, 0.3, peel=True),
        B((S("pour", ("bottle", "bowl"), "drizzle olive oil over the salad", "olive oil", "over the salad"),)),
        B((S("sprinkle", ("bowl",), "season the salad with {season}", "{season}", "on the salad", "season"),), 0.5),
        B((S("stir", ("bowl", "spoon"), "toss the salad", "salad"),)),
    )),
    TaskTemplate("make_tea", "make a cup of tea", {
        "cup": ("cup", ""), "kettle": ("kettle", ""), "bottle": ("bottle", "milk"), "spoon": ("spoon", "")}, (
        B((S("pour", ("kettle", "cup"), "pour hot water into the cup", "hot water", "into the cup"),)),
        B((S("sprinkle", ("cup",), "add some sugar to the tea", "sugar", "in the tea", "sugar"),), 0.6),
        B((S("pour", ("bottle", "cup"), "add a splash of milk", "milk", "into the tea"),), 0.7),
        B((S("stir", ("cup", "spoon"), "stir the tea", "tea"),)),
    )),
    TaskTemplate("fry_egg", "fry an egg", {
        "pan": ("pan", ""), "bottle": ("bottle", "oil"), "egg": ("egg", ""), "plate": ("plate", "")}, (
        B((S("pour", ("bottle", "pan"), "pour some oil into the pan", "oil", "into the pan"),)),
        B((S("crack", ("egg", "pan"), "crack the egg into the pan", "egg", "into the pan"),)),
        B((S("sprinkle", ("pan",), "season the egg with {season}", "{season}", "on the egg", "season"),), 0.6),
        B((S("flip", ("egg", "pan"), "flip the egg", "egg"),), 0.5),
        B((S("place", ("egg", "plate"), "put the fried egg on the plate", "egg", "on the plate"),)),
    )),
    TaskTemplate("make_toast", "make toast", {
        "pan": ("pan", ""), "bread": ("bread", ""), "plate": ("plate", ""), "knife": ("knife", "")}, (
        B((S("place", ("bread", "pan"), "put the bread in the pan", "bread", "in the pan"),
           S("flip", ("bread", "pan"), "flip the toast", "toast"),
           S("place", ("bread", "plate"), "put the toast on the plate", "toast", "on the plate"),
           S("spread", ("bread", "knife"), "spread {spread} on the toast", "{spread}", "on the toast", "spread"))),
        B((S("cut", ("bread", "knife"), "cut the toast in half", "toast"),), 0.4),
    )),
    TaskTemplate("cut_fruit", "cut an apple", {
        "board": ("cutting_board", ""), "apple": ("apple", ""), "knife": ("knife", ""), "plate": ("plate", "")}, (
        B((S("place", ("apple", "board"), "put the apple on the cutting board", "apple", "on the board"),)),
        B((S("peel", ("apple", "knife"), "peel the apple", "apple"),), 0.5),
        B((S("cut", ("apple", "knife"), "cut the apple into wedges", "apple"),
           S("place", ("apple", "plate"), "put the apple pieces on the plate", "apple", "on the plate"))),
    )),
    TaskTemplate("make_pancakes", "make pancakes", {
        "bowl": ("bowl", ""), "egg": ("egg", ""), "bottle": ("bottle", "milk"), "whisk": ("whisk", ""),
        "pan": ("pan", ""), "plate": ("plate", "")}, (
        B((S("crack", ("egg", "bowl"), "crack an egg into the bowl", "egg", "into the bowl"),
           S("pour", ("bottle", "bowl"), "pour the milk into the bowl", "milk", "into the bowl"),
           S("sprinkle", ("bowl",), "add the flour", "flour", "into the bowl", "flour"),
           S("whisk", ("bowl", "whisk"), "whisk the batter", "batter"),
           S("pour", ("bowl", "pan"), "pour the batter into the pan", "batter", "into the pan"),
           S("flip", ("pan",), "flip the pancake", "pancake"))),
        B((S("pour", ("pan", "plate"), "slide the pancake onto the plate", "pancake", "onto the plate"),), 0.6),
    )),
    TaskTemplate("prepare_carrots", "prepare carrots", {
        "board": ("cutting_board", ""), "carrot": ("carrot", ""), "knife": ("knife", ""), "bowl": ("bowl", "")}, (
        _prep("carrot", "cut", "bowl", "bowl", 0, peel=True),
    )),
)
TASK_BY_NAME = {t.name: t for t in TASKS}
