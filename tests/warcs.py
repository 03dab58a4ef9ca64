"""Small HTML pages for tests that write their own WARCs (curation.warc.write_response_warc)."""


def page(title: str, paragraphs: int = 3) -> bytes:
    body = "".join(
        f"<p>The {title} story continues with paragraph {i}, which explains what happened "
        f"to the people of the town and why it mattered to them.</p>"
        for i in range(paragraphs)
    )
    head = f"<head><title>{title}</title></head>"
    return f"<html>{head}<body><article>{body}</article></body></html>".encode()
