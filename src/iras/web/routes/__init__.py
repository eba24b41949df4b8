"""One router per resource: the course protocol, classification, results, jobs, operations."""
