"""Interim: replaced by the board-state reader of the telemetry work."""


def read_board_state() -> dict:
    return {}


def board_warnings(state: dict) -> list[str]:
    return []
