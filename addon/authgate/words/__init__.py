"""What the gate says: explanations in five languages, answers, error bodies, verdicts."""
