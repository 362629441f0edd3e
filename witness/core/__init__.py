"""The core on top of the endpoint clients: workflows, execution and results."""
