"""Speech synthesis for the benchmark builders: ``sonotell.data.tts``, where it lives.

It moved below the recipes so that ``methods.voice_label`` (its spoken-word encoder) needs no
import of ``bench``; the benchmark code and its tests keep this name.
"""

from sonotell.data.tts import (  # noqa: F401
    LANGUAGES,
    PIPER,
    PIPER_JOE,
    VARIANTS,
    EspeakTTS,
    PiperTTS,
    Speech,
    Voice,
    split_voices,
    voice_bank,
)
