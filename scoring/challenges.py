"""Challenge questions, generated on the server from a seed.

A challenge is a short run of arithmetic questions. The server will issue it
as a signed token that carries only the seed, so the questions must be a
pure function of (seed, spec, count): the same token always regenerates the
same questions, and checking answers needs no stored state.

The levels are the ones the play page (scoring/static/scoring/play.js) uses
today, keyed by difficulty ordering (1 = easiest; 3 stands for 3 and above).
``random.Random(seed)`` is used for its documented reproducibility: with the
same integer seed and calls it yields the same numbers on every CPython
since 3.2 (random module docs, "Notes on Reproducibility").

Pure: stdlib only, no Django.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

OPS = ("+", "-", "*", "/")
RANGES = ("add", "factor", "factor2", "divisor", "quotient")  # QuestionSpec's operand ranges
SIGNS = {"+": "+", "-": "\u2212", "*": "\u00d7", "/": "\u00f7"}
Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class QuestionSpec:
    """Which operations a task asks, and the operand ranges (inclusive).

    Addition and subtraction draw both operands from ``add``; multiplication
    draws ``factor`` × ``factor2``; division picks a ``divisor`` and a
    ``quotient`` and asks their product ÷ the divisor, so it always divides
    exactly. Subtraction puts the larger operand first: answers are never
    negative.
    """

    ops: tuple[str, ...] = OPS
    add: Range = (1, 9)
    factor: Range = (2, 9)
    factor2: Range = (2, 9)
    divisor: Range = (2, 9)
    quotient: Range = (2, 9)

    def __post_init__(self) -> None:
        if not self.ops or any(op not in OPS for op in self.ops) or len(set(self.ops)) != len(self.ops):
            raise ValueError(f"ops must name each of {' '.join(OPS)} at most once, and one at least, "
                             f"not {''.join(self.ops)!r}")
        for name in RANGES:
            try:
                low, high = getattr(self, name)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a range [low, high], not {getattr(self, name)!r}") from None
            whole = all(isinstance(n, int) and not isinstance(n, bool) for n in (low, high))
            if not whole or not 0 <= low <= high or (name == "divisor" and low < 1):
                raise ValueError(f"{name} must be a range low <= high of non-negative integers, not {(low, high)!r}")


@dataclass(frozen=True, slots=True)
class Question:
    a: int
    op: str
    b: int

    @property
    def answer(self) -> int:
        return {"+": self.a + self.b, "-": self.a - self.b, "*": self.a * self.b, "/": self.a // self.b}[self.op]

    @property
    def text(self) -> str:
        return f"{self.a} {SIGNS[self.op]} {self.b}"

    def as_dict(self) -> dict:
        """What a client sees: the question, never its answer."""
        return {"a": self.a, "op": self.op, "b": self.b, "text": self.text}


# play.js's LEVELS. How many questions a challenge asks is the difficulty's
# (Difficulty.question_count), not the level's.
LEVELS: dict[int, QuestionSpec] = {
    1: QuestionSpec(add=(1, 9), factor=(2, 9), factor2=(2, 9), divisor=(2, 9), quotient=(2, 9)),
    2: QuestionSpec(add=(10, 99), factor=(2, 12), factor2=(2, 12), divisor=(2, 12), quotient=(2, 12)),
    3: QuestionSpec(add=(100, 999), factor=(11, 99), factor2=(3, 19), divisor=(3, 12), quotient=(11, 49)),
}


def level_for(ordering: int | None) -> QuestionSpec:
    """The spec of a difficulty ordering, clamped to 1..3."""
    return LEVELS[min(3, max(1, ordering or 1))]


def spec_with(spec: QuestionSpec, *, ops: str | None = None, ranges: object = None) -> QuestionSpec:
    """``spec`` with a task's operations (``"+-"``) and ranges
    (``{"add": [10, 99]}``, as JSON gives them) in place of its own. Raises
    ValueError, saying what is wrong, for anything QuestionSpec cannot ask."""
    ranges = ranges or {}
    if not isinstance(ranges, dict) or set(ranges) - set(RANGES):
        raise ValueError(f"ranges must be an object with some of: {', '.join(RANGES)}; not {ranges!r}")
    try:
        bounds = {name: tuple(value) for name, value in ranges.items()}
    except TypeError:
        raise ValueError(f"each range must be [low, high], not {ranges!r}") from None
    return replace(spec, **bounds, **({"ops": tuple(ops)} if ops is not None else {}))


def questions_generate(*, seed: int, spec: QuestionSpec, count: int) -> list[Question]:
    """``count`` questions drawn from ``spec``, the same ones for the same seed."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    rng = random.Random(seed)

    def draw(bounds: Range) -> int:
        return rng.randint(*bounds)

    questions = []
    for _ in range(count):
        op = rng.choice(spec.ops)
        if op in ("+", "-"):
            a, b = draw(spec.add), draw(spec.add)
            if op == "-" and a < b:
                a, b = b, a
        elif op == "*":
            a, b = draw(spec.factor), draw(spec.factor2)
        else:
            b = draw(spec.divisor)
            a = b * draw(spec.quotient)
        questions.append(Question(a=a, op=op, b=b))
    return questions


def answers_check(*, questions: list[Question], answers: list[int]) -> list[int]:
    """Indexes of the wrong answers; every index if the count is wrong."""
    if len(answers) != len(questions):
        return list(range(len(questions)))
    return [i for i, (q, given) in enumerate(zip(questions, answers, strict=True)) if given != q.answer]
