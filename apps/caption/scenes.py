"""The shapes world: scenes, the caption grammar, its parser and the caption metrics.

A scene is 1 to 3 objects, each a (size, colour, shape) with a centre (x, y) in
[0, 1]; x grows to the right and y grows DOWN (image coordinates), so "above"
means a smaller y. No two objects of a scene share (size, colour, shape), so a
full description names exactly one object.

Relations. A pair is *clear* (stated in captions) when the centres are at least
CLEAR_MIN apart along one axis and the offset along the other axis is at most
CLEAR_RATIO of that: the direction lies within ~24 degrees of the axis, so one
relation word is obviously right and its perpendicular is obviously wrong. A
relation *holds* (what the metrics check) under a looser test: at least
HOLD_MIN along the named axis and at least HOLD_RATIO of the offset along the
other axis (within ~63 degrees), so a diagonal pair is both "left of" and
"above", as in English, and every clear relation holds while its perpendicular
and opposite do not.

Counting. A scene may hold two objects of the same description (twins, drawn
when a build asks for them: random_scene's ``twins``): alone ("two large red
circles") or with one other object, each twin clearly related to it in the same
direction, so the pair is one group that a caption names once. Twins are never
related to each other in a caption, and no description appears three times.

Grammar (every wording names size, colour and shape of every object; "is" and
the relation phrase vary; D(o) = "a <size> <colour> <shape>", T(o) = "the ...";
a twin pair is D = "two <size> <colour> <shape>s", its verb "are"):

    1 object   D(A)                     | there is D(A)     (twins: there are D(A))
    2 objects  D(S) [is] REL D(O)       (either object, or a twin pair, as subject)
    3 objects  one object H (the hub) is clearly related to both others X, Y:
      hub      D(H) [is] REL D(X) and REL D(Y)
      chain    D(X) [is] REL D(H) and T(H) [is] REL D(Y)
      which    D(X) [is] REL D(H) which is REL D(Y)
    REL        left of | to the left of | right of | to the right of
               | above | below | under

"which" always attaches to the object just named; "and" followed directly by a
relation continues the first clause's subject; T(H) refers back by its full
description, which is unique in a scene.
"""
import re
from collections import Counter
from dataclasses import dataclass


SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
SIZES = ("small", "large")
RELATIONS = ("left", "right", "above", "below")
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}

# Colour-shape pairs never seen in training; the "combo" split tests them (each
# colour and each shape still appears in training with other partners).
HELD_OUT_COMBOS = (("red", "triangle"), ("blue", "circle"), ("yellow", "square"))

# Layout radius (fraction of the image's shorter side) bounds the drawn shape of
# each size; large is ~1.9x small so the two never look alike at any image size.
LAYOUT_RADIUS = {"small": 0.09, "large": 0.17}
GAP = 0.03            # minimum free space between two objects' layout circles
EDGE = 0.01           # minimum free space between a layout circle and the border
CLEAR_MIN = 0.2       # a stated relation: at least this far along its axis ...
CLEAR_RATIO = 0.45    # ... and at most this fraction of that across it
HOLD_MIN = 0.1        # a relation holds: at least this far along its axis ...
HOLD_RATIO = 0.5      # ... and at least this fraction of the offset across it
OBJECT_COUNT_P = (0.2, 0.4, 0.4)  # P(1, 2, 3 objects): relations are the hard part

REL_PHRASES = {
    "left": ("left of", "to the left of"),
    "right": ("right of", "to the right of"),
    "above": ("above",),
    "below": ("below", "under"),
}
_REL_WORDS = {"left": "left", "right": "right", "above": "above", "below": "below", "under": "below"}

PLURALS = {shape: shape + "s" for shape in SHAPES}
_SINGULAR = {plural: shape for shape, plural in PLURALS.items()}

VOCAB = sorted({
    "a", "the", "there", "is", "and", "which", "to", "of", "two", "are",
    *SIZES, *COLOURS, *SHAPES, *PLURALS.values(), "left", "right", "above", "below", "under",
})


class SceneError(ValueError):
    """A scene that breaks the world's rules, or a layout that cannot be found."""


@dataclass(frozen=True)
class Obj:
    size: str
    colour: str
    shape: str
    x: float  # centre, 0 = left edge, 1 = right edge
    y: float  # centre, 0 = top edge, 1 = bottom edge

    @property
    def attrs(self):
        return (self.size, self.colour, self.shape)

    def describe(self, article="a"):
        return f"{article} {self.size} {self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    objects: tuple

    def __len__(self):
        return len(self.objects)

    @property
    def has_twins(self):
        """Whether two objects share a description (counting: "two large red circles")."""
        return len({o.attrs for o in self.objects}) < len(self.objects)

    @property
    def n_relations(self):
        """How many relations a caption needs to link every object (a twin pair is one group)."""
        return max(len(groups(self.objects)) - 1, 0)

    def to_json(self):
        return {"objects": [
            {"size": o.size, "colour": o.colour, "shape": o.shape, "x": o.x, "y": o.y}
            for o in self.objects
        ]}

    @classmethod
    def from_json(cls, obj):
        try:
            objects = tuple(Obj(o["size"], o["colour"], o["shape"], float(o["x"]), float(o["y"]))
                            for o in obj["objects"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SceneError(f"not a scene: {exc!r} in {str(obj)[:80]}") from None
        scene = cls(objects)
        check_scene(scene)
        return scene


@dataclass(frozen=True)
class ParsedCaption:
    objects: tuple    # distinct (size, colour, shape) in order of first mention
    relations: tuple  # (i, relation, j): objects[i] <relation> objects[j], relation in RELATIONS
    counts: tuple = ()  # how many of each object the caption says (1, or 2 for "two ..."); () = one of each

    def count(self, i):
        return self.counts[i] if self.counts else 1


def groups(objects):
    """Objects gathered by description, in order of first appearance: [[obj], [twin, twin], ...]."""
    out = {}
    for o in objects:
        out.setdefault(o.attrs, []).append(o)
    return list(out.values())


def describe(group, article="a"):
    """A group's noun phrase: 'a large red circle', or for twins 'two large red circles' ('the two ...')."""
    o = group[0]
    if len(group) == 1:
        return o.describe(article)
    return f"{'the two' if article == 'the' else 'two'} {o.size} {o.colour} {PLURALS[o.shape]}"


def group_relation(a, b):
    """The clear relation of group a to group b when every member of a has it to every member of b, else None."""
    found = {clear_relation(x, y) for x in a for y in b}
    return found.pop() if len(found) == 1 else None


# ----------------------------------------------------------------------------- geometry

def _offsets(a, b, relation):
    """(along, across): how far a is from b in the relation's direction, and sideways."""
    dx, dy = b.x - a.x, b.y - a.y  # a left of b: dx > 0; a above b: dy > 0
    if relation == "left":
        return dx, abs(dy)
    if relation == "right":
        return -dx, abs(dy)
    if relation == "above":
        return dy, abs(dx)
    if relation == "below":
        return -dy, abs(dx)
    raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")


def relation_holds(a, relation, b):
    """True when 'a <relation> b' is a fair description of the two centres (the metric's test)."""
    along, across = _offsets(a, b, relation)
    return along >= HOLD_MIN and along >= HOLD_RATIO * across


def clear_relation(a, b):
    """The relation of a to b when it is clear enough to state in a reference caption, else None."""
    for relation in RELATIONS:
        along, across = _offsets(a, b, relation)
        if along >= CLEAR_MIN and across <= CLEAR_RATIO * along:
            return relation
    return None


def _overlap(a, b):
    need = LAYOUT_RADIUS[a.size] + LAYOUT_RADIUS[b.size] + GAP
    return (a.x - b.x) ** 2 + (a.y - b.y) ** 2 < need * need


def _inside(o):
    r = LAYOUT_RADIUS[o.size] + EDGE
    return r <= o.x <= 1 - r and r <= o.y <= 1 - r


def _clear_edges(objects):
    return [(i, j) for i in range(len(objects)) for j in range(i + 1, len(objects))
            if clear_relation(objects[i], objects[j]) is not None]


def check_scene(scene):
    """Raise SceneError unless the scene follows the world's rules (used on loaded scenes and in tests)."""
    objs = scene.objects
    if not 1 <= len(objs) <= 3:
        raise SceneError(f"a scene has 1 to 3 objects, got {len(objs)}")
    for o in objs:
        if o.size not in SIZES or o.colour not in COLOURS or o.shape not in SHAPES:
            raise SceneError(f"unknown attribute in {o.attrs}")
        if not _inside(o):
            raise SceneError(f"{o.describe()} at ({o.x:.3f}, {o.y:.3f}) crosses the border")
    found = groups(objs)
    if any(len(g) > 2 for g in found) or sum(len(g) == 2 for g in found) > 1:
        raise SceneError("at most two objects share size, colour and shape")
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            if _overlap(objs[i], objs[j]):
                raise SceneError(f"objects {i} and {j} overlap")
    if len(found) < len(objs):  # twins: the pair is one group, clearly related to the other object if any
        if len(found) == 2 and group_relation(*found) is None:
            raise SceneError("the twins are not both clearly related to the other object in the same direction")
    elif len(objs) > 1 and len(_clear_edges(objs)) < len(objs) - 1:
        raise SceneError("the clearly related pairs do not link every object")


# ----------------------------------------------------------------------------- sampling

def _pairs(exclude):
    exclude = {tuple(p) for p in exclude}
    return [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in exclude]


def random_scene(rng, exclude=(), require=(), n_objects=None, twins=0.0):
    """A random scene whose stated relations are unambiguous.

    Parameters
    ----------
    rng : np.random.Generator
    exclude : iterable of (colour, shape)
        Pairs that must not appear (training splits pass HELD_OUT_COMBOS).
    require : iterable of (colour, shape)
        If given, at least one object is one of these pairs (the combo split).
    n_objects : int or None
        1, 2 or 3; None draws it with probabilities OBJECT_COUNT_P.
    twins : float
        The chance that a scene of 2 or 3 objects holds two of one description (counting); 0 draws no
        extra random number, so scenes without twins are those of a build before counting existed.

    Objects are placed one at a time, uniformly inside the frame, each clear of
    the others and clearly related to at least one earlier object, so the clear
    pairs always link every object (a tree of 0, 1 or 2 stated relations).
    """
    allowed = _pairs(exclude)
    required = [tuple(p) for p in require]
    if required and any(p in {tuple(e) for e in exclude} for p in required):
        raise SceneError("a required colour-shape pair is also excluded")
    if not allowed and not required:
        raise SceneError("every colour-shape pair is excluded")
    n = int(rng.choice([1, 2, 3], p=OBJECT_COUNT_P)) if n_objects is None else int(n_objects)
    if not 1 <= n <= 3:
        raise SceneError(f"n_objects must be 1, 2 or 3, got {n}")
    twin = twins > 0 and n >= 2 and rng.random() < twins
    for _ in range(100):
        attrs = []
        while len(attrs) < n - twin:
            pool = required if (required and not attrs) else (allowed + required if required else allowed)
            colour, shape = pool[rng.integers(len(pool))]
            triple = (SIZES[rng.integers(2)], colour, shape)
            if triple not in attrs:
                attrs.append(triple)
        if twin:
            attrs = attrs[1:] + [attrs[0]] * 2  # the first (the required pair, if any) twice, placed last
        else:
            attrs = [attrs[k] for k in rng.permutation(n)]  # the required object is not always first
        objects = []
        for size, colour, shape in attrs:
            r = LAYOUT_RADIUS[size] + EDGE
            for _ in range(200):
                o = Obj(size, colour, shape, float(rng.uniform(r, 1 - r)), float(rng.uniform(r, 1 - r)))
                if any(_overlap(o, p) for p in objects):
                    continue
                if twin and n == 3 and len(objects) >= 1:
                    # a twin: clearly related to the single object, in the same direction as its twin
                    rel = clear_relation(o, objects[0])
                    if rel is None or (len(objects) == 2 and rel != clear_relation(objects[1], objects[0])):
                        continue
                elif not twin and objects and not any(clear_relation(o, p) for p in objects):
                    continue
                objects.append(o)
                break
            else:
                break  # no room for this object next to the others: start again
        if len(objects) == n:
            if twin:
                objects = [objects[k] for k in rng.permutation(n)]
            return Scene(tuple(objects))
    raise SceneError(f"could not lay out {n} objects in 100 attempts")  # pragma: no cover


# ----------------------------------------------------------------------------- captions

def _spanning_paths(scene):
    """(hub, x, y) triples: hub clearly related to both x and y (3-object scenes)."""
    objs = scene.objects
    out = []
    for h in range(3):
        x, y = [k for k in range(3) if k != h]
        if clear_relation(objs[h], objs[x]) and clear_relation(objs[h], objs[y]):
            out.append((h, x, y))
    return out


def _order_key(o):
    return (round(o.x, 6), round(o.y, 6))


def _twin_captions(found):
    """(canonical, every wording) of a scene with twins: one or two groups."""
    if len(found) == 1:
        d = describe(found[0])
        return d, [d, "there are " + d]
    a, b = found
    rel = group_relation(a, b)
    if rel in ("right", "below"):  # subject is the left / upper group
        a, b, rel = b, a, OPPOSITE[rel]
    canonical = f"{describe(a)} {REL_PHRASES[rel][0]} {describe(b)}"
    out = []
    for s, o in ((a, b), (b, a)):
        for p in REL_PHRASES[group_relation(s, o)]:
            for v in ("", "are " if len(s) == 2 else "is "):
                out.append(f"{describe(s)} {v}{p} {describe(o)}")
    return canonical, out


def canonical_caption(scene):
    """One fixed wording: the shortest phrases, subjects and order chosen by position."""
    objs = scene.objects
    if scene.has_twins:
        return _twin_captions(groups(objs))[0]
    if len(objs) == 1:
        return objs[0].describe()
    if len(objs) == 2:
        a, b = objs
        rel = clear_relation(a, b)
        if rel in ("right", "below"):  # subject is the left / upper object
            a, b, rel = b, a, OPPOSITE[rel]
        return f"{a.describe()} {REL_PHRASES[rel][0]} {b.describe()}"
    h, x, y = min(_spanning_paths(scene), key=lambda p: _order_key(objs[p[0]]))
    hub, x, y = objs[h], objs[x], objs[y]
    if _order_key(y) < _order_key(x):
        x, y = y, x
    return (f"{hub.describe()} {REL_PHRASES[clear_relation(hub, x)][0]} {x.describe()} "
            f"and {REL_PHRASES[clear_relation(hub, y)][0]} {y.describe()}")


def _all_captions(scene):
    objs = scene.objects
    if scene.has_twins:
        return _twin_captions(groups(objs))[1]
    out = []
    if len(objs) == 1:
        return [objs[0].describe(), "there is " + objs[0].describe()]
    if len(objs) == 2:
        for s, o in ((objs[0], objs[1]), (objs[1], objs[0])):
            for p in REL_PHRASES[clear_relation(s, o)]:
                for v in ("", "is "):
                    out.append(f"{s.describe()} {v}{p} {o.describe()}")
        return out
    for h, x0, y0 in _spanning_paths(scene):
        hub = objs[h]
        for x, y in ((objs[x0], objs[y0]), (objs[y0], objs[x0])):
            hx, hy, xh = clear_relation(hub, x), clear_relation(hub, y), clear_relation(x, hub)
            for v in ("", "is "):
                for p1 in REL_PHRASES[hx]:
                    for p2 in REL_PHRASES[hy]:
                        out.append(f"{hub.describe()} {v}{p1} {x.describe()} and {p2} {y.describe()}")
                for p1 in REL_PHRASES[xh]:
                    for p2 in REL_PHRASES[hy]:
                        out.append(f"{x.describe()} {v}{p1} {hub.describe()} and "
                                   f"{hub.describe('the')} {v}{p2} {y.describe()}")
                        out.append(f"{x.describe()} {v}{p1} {hub.describe()} which is {p2} {y.describe()}")
    return out


def captions(scene, rng=None, n=None):
    """Reference captions of a scene; the first is always canonical_caption(scene).

    n=None: every wording the grammar allows (deduplicated, a fixed order).
    n: at most n distinct wordings: the canonical one, then n-1 drawn from the
    rest with rng (or the first ones in the fixed order when rng is None).
    """
    first = canonical_caption(scene)
    rest = sorted(set(_all_captions(scene)) - {first})
    if n is None:
        return [first] + rest
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    k = min(n - 1, len(rest))
    if rng is None:
        return [first] + rest[:k]
    picks = rng.choice(len(rest), size=k, replace=False) if k else []
    return [first] + [rest[i] for i in picks]


def tokenize(caption):
    """Lowercase words, punctuation dropped: 'A red circle, left of...' -> ['a', 'red', 'circle', 'left', 'of']."""
    return re.findall(r"[a-z0-9]+", caption.lower())


# ----------------------------------------------------------------------------- parsing

class _Parser:
    def __init__(self, words):
        self.w = words
        self.i = 0
        self.objects = []
        self.counts = []
        self.relations = []

    def peek(self, k=0):
        return self.w[self.i + k] if self.i + k < len(self.w) else None

    def take(self, *words):
        if self.peek() in words:
            self.i += 1
            return True
        return False

    def noun(self):
        """[a|an|the] SIZE COLOUR SHAPE | [the] two SIZE COLOUR SHAPEs -> object index (one per distinct triple)."""
        article = self.peek()
        if not self.take("a", "an", "the"):
            article = None
        count = 2 if article in (None, "the") and self.take("two") else 1
        size, colour, shape = self.peek(), self.peek(1), self.peek(2)
        if count == 2:
            shape = _SINGULAR.get(shape)
        if size not in SIZES or colour not in COLOURS or shape not in SHAPES:
            raise SyntaxError
        self.i += 3
        triple = (size, colour, shape)
        if triple not in self.objects:
            self.objects.append(triple)
            self.counts.append(count)
        k = self.objects.index(triple)
        self.counts[k] = max(self.counts[k], count)
        return k

    def starts_rel(self):
        return self.peek() in ("is", "are", "to", "left", "right", "above", "below", "under")

    def rel(self):
        self.take("is", "are")
        if self.take("to"):
            if not self.take("the"):
                raise SyntaxError
        word = self.peek()
        if word not in _REL_WORDS:
            raise SyntaxError
        self.i += 1
        if word in ("left", "right") and not self.take("of"):
            raise SyntaxError
        return _REL_WORDS[word]

    def clause(self):
        """NP [[is] REL NP] -> (subject, last mentioned)."""
        subject = self.noun()
        if not self.starts_rel():
            return subject, subject
        relation = self.rel()
        other = self.noun()
        self.relations.append((subject, relation, other))
        return subject, other

    def caption(self):
        if self.peek() == "there":
            self.i += 1
            if not self.take("is", "are"):
                raise SyntaxError
        topic, last = self.clause()
        while self.peek() is not None:
            if self.take("which"):
                if not self.take("is"):
                    raise SyntaxError
                relation = self.rel()
                other = self.noun()
                self.relations.append((last, relation, other))
                last = other
            elif self.take("and"):
                if self.starts_rel():
                    relation = self.rel()
                    other = self.noun()
                    self.relations.append((topic, relation, other))
                    last = other
                else:
                    topic, last = self.clause()
            else:
                raise SyntaxError
        return ParsedCaption(tuple(self.objects), tuple(self.relations), tuple(self.counts))


def parse_caption(text):
    """The objects and relations a caption states, or None if it is not in the grammar.

    Objects are distinct (size, colour, shape) triples in order of first mention
    (a repeated description is the same object; counts says 2 for "two ..."); relations are (i, relation, j)
    with relation one of RELATIONS ("under" -> "below", "to the left of" -> "left").
    """
    if not isinstance(text, str):
        return None
    words = tokenize(text)
    if not words:
        return None
    try:
        return _Parser(words).caption()
    except SyntaxError:
        return None


# ----------------------------------------------------------------------------- metrics

def _size_matches(truth, said):
    """(right sizes, matched objects): objects of the same colour and shape in truth and caption (Counters of
    (size, colour, shape)) matched one to one, and how many of those pairs agree on the size."""
    correct = total = 0
    for colour in COLOURS:
        for shape in SHAPES:
            t = Counter(s for s, c, h in truth.elements() if (c, h) == (colour, shape))
            p = Counter(s for s, c, h in said.elements() if (c, h) == (colour, shape))
            total += min(sum(t.values()), sum(p.values()))
            correct += sum((t & p).values())
    return correct, total


def score_caption(text, scene):
    """How well one caption describes one scene.

    Returns a dict of counts:
      parsed               the caption is in the grammar
      object_set_exact     the multiset of (size, colour, shape) equals the scene's
      objects_correct      scene objects whose full triple the caption names
      objects_total        scene objects
      objects_predicted    objects the caption names (for precision)
      sizes_correct/total  among scene objects whose colour+shape the caption names
                           (matched one to one), those with the right size
      relations_correct    stated relations whose two objects are in the scene and
                           whose relation holds between their centres
      relations_total      max(stated relations, relations the scene needs), so a
                           caption that leaves objects unlinked is not rewarded;
                           an unparsable caption scores 0 of the scene's count
    """
    by_attrs = {g[0].attrs: g for g in groups(scene.objects)}

    def holds(a, relation, b):  # between every member of the two groups (twins: both)
        a, b = by_attrs.get(a), by_attrs.get(b)
        return a is not None and b is not None and all(relation_holds(x, relation, y) for x in a for y in b)

    return _score(parse_caption(text), [o.attrs for o in scene.objects], scene.n_relations, holds)


def _score(parsed, truth_objects, n_relations, holds):
    """score_caption's counts of a parsed caption (None: not in the grammar) against the true objects'
    (size, colour, shape), the relations the scene needs, and holds(a, relation, b) for two named objects."""
    truth = Counter(truth_objects)
    if parsed is None:
        return {"parsed": False, "object_set_exact": False, "objects_correct": 0, "objects_total": len(truth_objects),
                "objects_predicted": 0, "sizes_correct": 0, "sizes_total": 0, "relations_correct": 0,
                "relations_total": n_relations}
    said = Counter({o: parsed.count(k) for k, o in enumerate(parsed.objects)})
    sizes_correct, sizes_total = _size_matches(truth, said)
    relations_correct = sum(1 for i, relation, j in parsed.relations
                            if i != j and holds(parsed.objects[i], relation, parsed.objects[j]))
    return {"parsed": True, "object_set_exact": truth == said, "objects_correct": sum((truth & said).values()),
            "objects_total": len(truth_objects), "objects_predicted": sum(said.values()),
            "sizes_correct": sizes_correct, "sizes_total": sizes_total, "relations_correct": relations_correct,
            "relations_total": max(len(parsed.relations), n_relations)}


def score_against_references(text, references):
    """score_caption when the scene is unknown (a user's images): the truth is what the references say. The
    objects are those of the first reference in the grammar; a stated relation is right when some reference
    states it (or its converse) between the same two descriptions. Relations that hold but no reference states
    (a diagonal pair is both "left of" and "above") count as wrong, so the relation rate is a lower bound.
    None when no reference is in the grammar."""
    parsed_refs = [p for p in (parse_caption(r) for r in references) if p is not None]
    if not parsed_refs:
        return None
    first = parsed_refs[0]
    truth_objects = [o for k, o in enumerate(first.objects) for _ in range(first.count(k))]
    stated = set()
    for p in parsed_refs:
        for i, relation, j in p.relations:
            a, b = p.objects[i], p.objects[j]
            stated |= {(a, relation, b), (b, OPPOSITE[relation], a)}
    return _score(parse_caption(text), truth_objects, max(len(first.objects) - 1, 0),
                  lambda a, relation, b: (a, relation, b) in stated)


def _rate(num, den):
    return num / den if den else None


def aggregate(scores):
    """Rates over many score_caption dicts (None where a denominator is zero)."""
    scores = list(scores)
    total = {k: sum(int(s[k]) for s in scores) for k in (
        "parsed", "object_set_exact", "objects_correct", "objects_total", "objects_predicted",
        "sizes_correct", "sizes_total", "relations_correct", "relations_total")}
    return {
        "n": len(scores),
        "parse_rate": _rate(total["parsed"], len(scores)),
        "object_set_accuracy": _rate(total["object_set_exact"], len(scores)),
        "object_recall": _rate(total["objects_correct"], total["objects_total"]),
        "object_precision": _rate(total["objects_correct"], total["objects_predicted"]),
        "size_accuracy": _rate(total["sizes_correct"], total["sizes_total"]),
        "relation_accuracy": _rate(total["relations_correct"], total["relations_total"]),
        "parsed_count": total["parsed"],
        "exact_count": total["object_set_exact"],
        **{k: v for k, v in total.items() if k not in ("parsed", "object_set_exact")},
    }


def bleu4(hypotheses, references_lists):
    """Corpus BLEU-4 (sacrebleu, default 13a tokenisation) against several references per hypothesis.

    references_lists[i] is the list of references of hypotheses[i]; the lists may
    differ in length (sacrebleu's signature then says nrefs:var).
    Returns {"score": float in [0, 100] (sacrebleu's name), "signature": str, "n": int}.
    """
    from sacrebleu.metrics import BLEU

    hypotheses = list(hypotheses)
    references_lists = [list(r) for r in references_lists]
    if len(hypotheses) != len(references_lists):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references_lists)} reference lists")
    if not hypotheses:
        raise ValueError("bleu4 needs at least one hypothesis")
    if any(not refs for refs in references_lists):
        raise ValueError("every hypothesis needs at least one reference")
    width = max(len(r) for r in references_lists)
    streams = [[refs[k] if k < len(refs) else None for refs in references_lists] for k in range(width)]
    metric = BLEU()
    score = metric.corpus_score(hypotheses, streams)
    return {"score": float(score.score), "signature": str(metric.get_signature()), "n": len(hypotheses)}
