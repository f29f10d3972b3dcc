"""A package the test notebooks import, uploaded with them."""


def shout(text: str) -> str:
    return text.upper()
