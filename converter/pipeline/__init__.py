"""The pipelines behind the commands: build, verify, build-all, predict, inspect, demo."""
