"""The OneWindow engine: cases, steps, their state machines, persistence and audit.

Plain Python: nothing here imports Flask, so the web app, the CLI and the timer worker all
drive the same operations (see ``workflow.operations``).
"""
