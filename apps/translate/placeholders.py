"""What a translation must copy, never translate: placeholders, markup, accelerators, edge whitespace.

Before the model sees a message, ``mask`` replaces every placeholder by a slot
token (one private-use character each, U+E000 + i, which the subword model
keeps whole), takes the accelerator mark out (``_File``, ``&File``) and the
leading and trailing whitespace, newline and colon off; after the model,
``unmask`` puts the originals back. So the model never has to spell ``%1$s``,
and the result holds exactly the source's placeholders, whatever the model
wrote:

- a slot the output lacks is appended at its end (a translator reviews every
  filled entry anyway: they are marked fuzzy), a repeated one is kept once, an
  unknown one dropped;
- printf codes without a position (``%s``, ``%d``) are consumed in the order
  of their arguments, so they are put back in source order whatever order the
  model wrote their slots in (``%s``, ``%d`` swapped would crash a C program);
- the accelerator goes before the same letter as in the source if the
  translation has it (at a word start first), else before its first letter.

Placeholders (PATTERN, first match wins): printf codes (``%s``, ``%-10.3lu``,
``%1$s``, ``%%``, ``%<PRIu64>``, ``%(name)s``), braces (``{}``, ``{0}``,
``{name}``, ``{name:>8}``, ``${VAR}``), shell-style ``$VAR``, XML/HTML tags and
entities (``<b>``, ``</a>``, ``&amp;``), URLs and e-mail addresses, and the
control characters newline and tab inside a message.
"""
import re
from dataclasses import dataclass, field

SLOT_BASE = 0xE000
MAX_SLOTS = 64

PRINTF = r"%(?:\d+\$)?[-+ 0#'I]*(?:\d+|\*(?:\d+\$)?)?(?:\.(?:\d+|\*(?:\d+\$)?))?" \
         r"(?:hh|h|ll|l|L|q|j|z|Z|t|I64|I32)?[diouxXeEfFgGaAcspnmCS]"
PATTERN = re.compile("|".join([
    r"%%",
    r"%<PRI[diouxX](?:8|16|32|64|MAX|PTR|LEAST\d+|FAST\d+)>",
    r"%\([A-Za-z_][\w.]*\)[-+ 0#]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]",
    PRINTF,
    r"\$\{[^{}\s]*\}",
    r"\{[A-Za-z_0-9.\[\]]*(?:![rsa])?(?::[^{}]*)?\}",
    r"\$[A-Z_][A-Z0-9_]*\b",
    r"</?[A-Za-z][\w:-]*(?:\s+[\w:-]+(?:=(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*\s*/?>",
    r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);",
    r"(?:https?|ftp)://[^\s<>\"'()\[\]{}]+[^\s<>\"'()\[\]{}.,;:!?]",
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    r"[\n\t\r]",
]))
OPEN_ENDED = re.compile(r"(?:https?|ftp)://|[\w.+-]+@|\$[A-Z_]")  # placeholders a neighbouring character can extend
GLUE = re.compile(r"[\w.+@/\[\]()-]")
UNORDERED_PRINTF = re.compile(r"%(?!\d+\$)(?!%)(?!\()(?!<)")   # a printf code whose argument comes by order
EDGE = re.compile(r"^(\s*)(.*?)(\s*:?\s*)$", re.S)


def slot(i):
    return chr(SLOT_BASE + i)


SLOT_CHARS = [slot(i) for i in range(MAX_SLOTS)]
SLOT_RE = re.compile(f"[{slot(0)}-{slot(MAX_SLOTS - 1)}]")


@dataclass
class Masked:
    text: str                                   # what the model reads
    source: str = ""                            # the message as given
    slots: list = field(default_factory=list)   # slot i's original text
    prefix: str = ""                            # leading whitespace
    suffix: str = ""                            # trailing whitespace, newline, colon
    accel: tuple = None                         # (mark, letter) e.g. ("_", "F"), or None
    copy: bool = False                          # nothing to translate (empty, only placeholders, unmaskable)


def find_accelerator(text):
    """(mark, index of the mark) of a GTK ``_X`` or Qt/KDE ``&X`` accelerator, or None.

    One mark before a letter or digit; ``_`` inside a lower-case word (max_depth) is no accelerator,
    ``&`` before a space or as an entity (``&amp;``) neither.
    """
    inside = [m.span() for m in PATTERN.finditer(text)]  # never a mark inside a URL, %(name)s, {file_name}...
    for mark in "_&":
        hits = [m.start() for m in re.finditer(re.escape(mark) + r"(?=\w)", text)
                if not any(a <= m.start() < b for a, b in inside)]
        if len(hits) != 1 or text.count(mark) != 1:
            continue
        i = hits[0]
        if mark == "&" and re.match(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);", text[i:]):
            continue
        if text[i + 1] == "_" or not text[i + 1].isalnum():
            continue
        word_start = i
        while word_start > 0 and text[word_start - 1].isalnum():
            word_start -= 1
        if mark == "_" and word_start < i and not text[word_start].isupper():
            continue  # snake_case identifier, not a menu label
        return mark, i
    return None


def mask(text, accelerators=True):
    """Masked for ``text``: placeholders as slots, accelerator and edges taken off."""
    if any(SLOT_BASE <= ord(c) < SLOT_BASE + MAX_SLOTS for c in text):
        return Masked(text, text, copy=True)  # already holds our slot characters: do not touch
    source, accel = text, None
    if accelerators:
        found = find_accelerator(text)
        if found is not None:
            mark, i = found
            accel = (mark, text[i + 1])
            text = text[:i] + text[i + 1:]
    slots = []

    def sub(m):
        slots.append(m.group(0))
        return slot(len(slots) - 1) if len(slots) <= MAX_SLOTS else m.group(0)

    prefix, core, suffix = EDGE.match(text).groups()
    body = PATTERN.sub(sub, core)
    if len(slots) > MAX_SLOTS:
        return Masked(source, source, copy=True)
    body = re.sub(r" {2,}", " ", body)
    has_words = re.search(r"[^\W\d_]", SLOT_RE.sub("", body)) is not None
    return Masked(body, source, slots, prefix, suffix, accel, copy=not has_words)


def mask_target(source_masked, target):
    """The training target masked with the *source's* slots, or None if the pair does not agree
    (a placeholder of one side missing or changed on the other: not a pair to learn copying from)."""
    if source_masked.copy:
        return None
    if source_masked.accel is not None:
        found = find_accelerator(target)
        if found is not None:
            target = target[:found[1]] + target[found[1] + 1:]
    _, core, _ = EDGE.match(target).groups()
    free = list(range(len(source_masked.slots)))
    bad = []

    def sub(m):
        for k in free:
            if source_masked.slots[k] == m.group(0):
                free.remove(k)
                return slot(k)
        bad.append(m.group(0))
        return m.group(0)

    body = PATTERN.sub(sub, core)
    if bad or free:
        return None
    return re.sub(r" {2,}", " ", body)


def unmask(translation, masked, lang=None):
    """The model's output (slots in it) -> the final string with every source placeholder exactly once."""
    if masked.copy or translation == masked.text:  # nothing to translate, or the model copied the source
        return masked.source
    n = len(masked.slots)
    seen, pieces = set(), []
    for piece in re.split(f"({SLOT_RE.pattern})", translation):
        if SLOT_RE.fullmatch(piece or "x"):
            k = ord(piece) - SLOT_BASE
            if k >= n or k in seen:
                continue
            seen.add(k)
        pieces.append(piece)
    missing = [k for k in range(n) if k not in seen]
    text = "".join(pieces).strip()
    for k in missing:
        text += ("" if masked.slots[k] in "\n\t" else " ") + slot(k)
    # printf codes that take their argument by order go back in source order
    ordered = [k for k in range(n) if UNORDERED_PRINTF.match(masked.slots[k]) and masked.slots[k] != "%%"]
    order_in_text = [ord(c) - SLOT_BASE for c in SLOT_RE.findall(text) if ord(c) - SLOT_BASE in ordered]
    remap = dict(zip(order_in_text, ordered))
    def put_back(m):
        original = masked.slots[remap.get(ord(m.group(0)) - SLOT_BASE, ord(m.group(0)) - SLOT_BASE)]
        if OPEN_ENDED.match(original):  # a URL, an address, $VAR: a letter or bracket beside it would join it
            before, after = text[m.start() - 1:m.start()], text[m.end():m.end() + 1]
            original = (" " if before and GLUE.match(before) else "") + original + \
                (" " if after and GLUE.match(after) else "")
        return original

    text = SLOT_RE.sub(put_back, text)
    text = re.sub(r" +([\n\t])", r"\1", text)
    if masked.accel is not None:
        text = place_accelerator(text, *masked.accel)
    return masked.prefix + text + _suffix(masked.suffix, lang)


def _suffix(suffix, lang):
    """The source's trailing whitespace and colon; French writes a space before a colon."""
    if lang == "fr" and suffix.lstrip(" ").startswith(":") and not suffix.startswith(" "):
        return " " + suffix
    return suffix


def place_accelerator(text, mark, letter):
    """Insert ``mark`` before ``letter`` at a word start (any case), else before the first letter."""
    starts = [i for i, c in enumerate(text) if c.lower() == letter.lower() and c.isalnum()
              and (i == 0 or not text[i - 1].isalnum())]
    pick = (starts or [i for i, c in enumerate(text) if c.isalpha()] or [None])[0]
    if pick is None:
        return text
    # never inside a placeholder we put back: only positions outside PATTERN matches
    inside = [m.span() for m in PATTERN.finditer(text)]
    if any(a <= pick < b for a, b in inside):
        outside = [i for i, c in enumerate(text) if c.isalpha() and not any(a <= i < b for a, b in inside)]
        if not outside:
            return text
        pick = outside[0]
    return text[:pick] + mark + text[pick:]


def placeholders_of(text):
    """The placeholders of a final string, in order (for the preservation check)."""
    return PATTERN.findall(text)


def preserved(source, translation):
    """True if ``translation`` holds exactly the source's placeholders (printf codes by order in the same order)."""
    src, out = placeholders_of(source), placeholders_of(translation)
    if sorted(src) != sorted(out):
        return False
    ordered = lambda xs: [x for x in xs if UNORDERED_PRINTF.match(x) and x != "%%"]  # noqa: E731
    return ordered(src) == ordered(out)
