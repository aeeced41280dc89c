"""Speech recognition: faster-whisper, offline, with per-character timings.

recognizer = load_recognizer(settings.asr)
utterances = transcribe_turns(track, 16000, turns, recognizer)
utterances = transcribe_parties([(agent_track, agent_turns), (customer_track, customer_turns)], 16000, recognizer)
"""

from pipeline.asr.transcribe import Recognizer, load_recognizer, transcribe_parties, transcribe_turns

__all__ = ["Recognizer", "load_recognizer", "transcribe_parties", "transcribe_turns"]
