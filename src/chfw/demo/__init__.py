"""`chfw demo`: a whole CH firmware wave, CS06 answers to delivered alerts, on one machine."""
