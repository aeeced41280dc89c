"""Speech recognition: faster-whisper, offline, with per-character timings.

recognizer = load_recognizer(settings.asr)
utterances = transcribe_turns(track, 16000, turns, recognizer)
"""

from pipeline.asr.transcribe import Recognizer, load_recognizer, transcribe_turns

__all__ = ["Recognizer", "load_recognizer", "transcribe_turns"]
