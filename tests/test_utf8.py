import pytest

from refinery.utf8 import decode_utf8, read_utf8, utf8_lines


class Refused(Exception):
    pass


def test_a_byte_that_is_not_utf8_is_named_with_its_file_and_line(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"fine\nalso fine\ncaf\xe9\n")
    expected = r"latin.txt: line 3: byte b'\\xe9' is not UTF-8 \(convert the file to UTF-8"
    with pytest.raises(Refused, match=expected):
        read_utf8(path, Refused)
    with pytest.raises(Refused, match=expected):
        list(utf8_lines(path, Refused))
    with pytest.raises(Refused, match=r"^manifest x: line 1: byte b'\\xff'"):
        decode_utf8(b"\xff", "manifest x", Refused)


def test_text_reads_whole_without_its_byte_order_mark_and_lines_split_at_newline_alone(tmp_path):
    path = tmp_path / "ok.txt"
    path.write_bytes("\ufeffa\u2028b\nc\n".encode())
    assert read_utf8(path, Refused) == "a\u2028b\nc\n"
    assert list(utf8_lines(path, Refused)) == ["a\u2028b\n", "c\n"]
