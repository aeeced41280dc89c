"""Call metrics (speaking rate, interruptions, holds, rings, silence, hang-up) over the spine's
utterances, character timings and voice activity. Implemented by the metrics stage."""
