"""English function words: one list, and the few additions each use needs.

They carry no topic: a question's "what", "did", "of" match every passage.
The language check, the follow-up detection and BM25's stop words all start
from FUNCTION_WORDS; what each adds is named beside it.
"""

from __future__ import annotations

FUNCTION_WORDS = frozenset(
    "a an the is are was were be been do does did what who whom whose which when where why how "
    "of in on at to for from by with about and or not no has have had will would can could should".split()
)

# Frequent in any English sentence, so their presence tells English from other
# languages (rag/questions.py); pronouns and determiners included.
ENGLISH_MARKERS = FUNCTION_WORDS | frozenset(
    "yes this that these those it its he she they his her their there than then".split()
)

# What a follow-up says without naming anything ("tell me more", "what else").
CONVERSATION_FILLER = frozenset("tell me more also too else other".split())

# Beside Lucene's English list (bm25s's), questions' own function words
# ("how much", "according to", "tell me") match everywhere and carry no topic.
# Changing this set changes BM25's tokens: rag/sparse.py's TOKENIZER_ID then
# asks for a rebuild.
QUESTION_STOPWORDS = FUNCTION_WORDS | frozenset(
    "may might must shall much many according tell me its his her he she him we you "
    "i my our your us them than so also any some all there here".split()
)

# Temperature units (three named after people, and centigrade), capitalised
# in a question ("in degrees Celsius") while articles write "°C": they say in
# what form the answer comes, not what the question is about, so the
# unknown-name rule (rag/questions.py) never takes them, or their plurals, for
# a name the corpus lacks.
UNIT_WORDS = frozenset("celsius fahrenheit kelvin centigrade".split())

# Nouns that name a measured quantity: "What is the bond angle of water?",
# "At what temperature does it boil?", "What was the focal depth?" ask for a
# number though no "how many" says so. The short answer's scorer
# (rag/short.py QuestionFrame.measure) reads them as the last word of the
# phrase after "what" or "which". Left out: "area" and "value", which SQuAD's
# questions mostly use for a region or a worth in words ("What area of the
# brain ...": 40 of 273 answers hold a number).
MEASURE_WORDS = frozenset(
    "temperature angle mass ph speed velocity height length weight density distance cost price budget size "
    "depth diameter radius width duration age rate frequency voltage pressure altitude elevation capacity "
    "population percentage wavelength salary revenue worth volume score".split()
)
# "boiling point", "melting point": a measure only after these.
MEASURE_POINTS = frozenset("boiling melting freezing dew flash".split())
