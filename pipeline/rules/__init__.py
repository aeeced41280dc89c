"""The scorecard engine: rules/*.yaml over transcripts and metrics → findings and scores.
Implemented by the scorecard stage."""
