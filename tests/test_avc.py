"""H.264 parameter sets in an mp4: the avcC record read, merged and put into a sample description."""

from __future__ import annotations

from dataclasses import replace

import pytest
from media_cases import case

from prep.media.avc import AvcConfig, _with_ue_field, parse_avc_config, with_avc_config
from prep.media.mp4 import _avc_config, read_mp4, read_track

# A Constrained Baseline SPS (id 0) and PPS (id 0), as openh264 writes them.
SPS0 = bytes.fromhex("6742c01e8c680a02ff970101e1108d40")
PPS0 = bytes.fromhex("68ce3c80")
# x264's with `sps-id=1`: the SPS carries an emulation prevention byte (00 00 03).
SPS1 = bytes.fromhex("6742c01e5680a02ff970110000030001000003003c0f162ea0")
PPS1 = bytes.fromhex("6848e023c8")
# An x264 High profile SPS and its CABAC PPS (id 0); the same SPS under id 1 (its emulation
# prevention bytes fall elsewhere) and a CAVLC PPS under id 1 pointing at it, from one x264 with
# `cabac=0:sps-id=1`; and that PPS pointed at SPS 0.
X264_SPS0 = bytes.fromhex("67640028acd940780227e5c044000003000400000300f03c60c658")
X264_PPS0 = bytes.fromhex("68ef86f2c0")
X264_SPS1 = bytes.fromhex("676400284b36501e0089f970110000030001000003003c0f183196")
X264_PPS1 = bytes.fromhex("6848f86f2c")
X264_PPS1_ON_SPS0 = bytes.fromhex("6853e1bcb0")


def _record(sps: list[bytes], pps: list[bytes], tail: bytes = b"") -> bytes:
    out = bytearray([1, 66, 0xC0, 30, 0xFF, 0xE0 | len(sps)])
    for unit in sps:
        out += len(unit).to_bytes(2, "big") + unit
    out.append(len(pps))
    for unit in pps:
        out += len(unit).to_bytes(2, "big") + unit
    return bytes(out + tail)


def test_parse_reads_the_ids_and_round_trips() -> None:
    config = parse_avc_config(_record([SPS0], [PPS0]))
    assert config is not None
    assert (config.profile, config.compatibility, config.level, config.length_size) == (66, 0xC0, 30, 4)
    assert config.sps_ids == config.pps_ids == {0} and config.free_id() == 1
    # reserved bits are written as the standard has them (0xFF and 0xE1 here already are)
    assert config.to_bytes() == _record([SPS0], [PPS0])


def test_merged_lists_both_encoders_sets_after_the_sources() -> None:
    source, edges = parse_avc_config(_record([SPS0], [PPS0])), parse_avc_config(_record([SPS1], [PPS1]))
    assert source is not None and edges is not None
    assert edges.sps_ids == edges.pps_ids == {1}  # read through the emulation prevention byte
    merged = source.merged(edges)
    assert merged.sps == (SPS0, SPS1) and merged.pps == (PPS0, PPS1)
    again = parse_avc_config(merged.to_bytes())
    assert again == merged and again.free_id() == 2


def test_high_profile_extension_is_kept() -> None:
    tail = bytes([0xFD, 0xF8, 0xF8, 0x00])  # chroma 4:2:0, 8-bit luma and chroma, no SPS ext
    config = parse_avc_config(_record([SPS0], [PPS0], tail))
    assert config is not None and config.extension == tail
    assert config.to_bytes().endswith(tail)


@pytest.mark.parametrize("record", [
    b"", b"\x01\x42", _record([], [PPS0]), _record([SPS0], []),
    _record([SPS0], [PPS0])[:-2],  # the PPS cut short
    _record([bytes([0x67, 66, 0, 30, 0])], [PPS0]),  # an id that runs past its data
])
def test_records_prep_cannot_rewrite_are_refused(record: bytes) -> None:
    assert parse_avc_config(record) is None


def _ue(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def _unit(header: bytes, bits: str) -> bytes:
    """A NAL unit: `header`, then `bits` with a stop bit, padded to whole bytes."""
    bits += "1"
    bits += "0" * (-len(bits) % 8)
    return header + int(bits, 2).to_bytes(len(bits) // 8, "big")


def test_free_id_skips_the_ids_in_use_and_is_none_when_all_are() -> None:
    sps = {n: _unit(bytes([0x67, 66, 0xC0, 30]), _ue(n)) for n in range(31)}
    some = AvcConfig(66, 0xC0, 30, 4, (sps[0], sps[1], sps[3]), (PPS0,), b"")
    assert some.sps_ids == {0, 1, 3} and some.free_id() == 2
    # an avcC holds at most 31 SPS; the PPS takes the last id
    every = AvcConfig(66, 0xC0, 30, 4, tuple(sps.values()),
                      (_unit(b"\x68", _ue(31) + _ue(0)),), b"")
    assert every.free_id() is None
    assert parse_avc_config(every.to_bytes()) == every


@pytest.mark.media
@pytest.mark.parametrize("name", ["compliant", "quicktime"])
def test_a_new_avcc_goes_into_the_sample_description_with_the_sizes_around_it(name: str) -> None:
    found = read_track(case(name), "vide")
    assert found is not None
    stsd = found[1][b"stsd"]
    old = read_mp4(case(name)).track("vide").avc_config  # type: ignore[union-attr]
    config = parse_avc_config(old or b"")
    extra = parse_avc_config(_record([SPS1], [PPS1]))
    assert config is not None and extra is not None
    bigger = config.merged(extra).to_bytes()
    grown = with_avc_config(stsd, bigger)
    assert len(grown) - len(stsd) == len(bigger) - len(old or b"")
    assert int.from_bytes(grown[:4], "big") == len(grown)  # the stsd's own size grew with it
    assert _avc_config(grown[8:]) == bigger  # the avc1 entry's size too: its avcC reads back
    assert with_avc_config(grown, old or b"") == stsd  # and it goes back as it was


def test_an_edge_pps_is_pointed_at_the_sources_sps_when_their_sps_are_the_same() -> None:
    source = parse_avc_config(_record([X264_SPS0], [X264_PPS0]))
    edges = parse_avc_config(_record([X264_SPS1], [X264_PPS1]))
    assert source is not None and edges is not None and edges.sps_ids == edges.pps_ids == {1}
    shared = source.sharing_sps(edges)
    assert shared is not None
    assert shared.sps == (X264_SPS0,) and shared.pps == (X264_PPS0, X264_PPS1_ON_SPS0)
    assert shared.sps_ids == {0} and shared.pps_ids == {0, 1}
    assert parse_avc_config(shared.to_bytes()) == shared
    # Each rewrite undone gives x264's own units back, emulation prevention bytes and all.
    assert _with_ue_field(X264_PPS1_ON_SPS0, 1, 1, 1) == X264_PPS1
    assert _with_ue_field(X264_SPS0, 4, 0, 1) == X264_SPS1


def test_a_rewritten_field_gets_emulation_prevention_where_its_bytes_need_it() -> None:
    # A PPS with ids 0 and 0 (bits 1 1), 27 zero bits and the stop bit: c0 00 00 04. With its
    # first id made 2 (bits 011) the payload is 70 00 00 01, whose 00 00 01 must be escaped.
    unit = bytes.fromhex("68c0000004")
    escaped = _with_ue_field(unit, 1, 0, 2)
    assert escaped == bytes.fromhex("687000000301")
    assert _with_ue_field(escaped, 1, 0, 0) == unit


def test_an_edge_sps_that_differs_beyond_its_id_is_not_shared() -> None:
    source = parse_avc_config(_record([X264_SPS0], [X264_PPS0]))
    other = parse_avc_config(_record([SPS1], [PPS1]))  # another encoder's SPS under id 1
    two = parse_avc_config(_record([X264_SPS1, SPS1], [X264_PPS1]))
    assert source is not None and other is not None and two is not None
    assert source.sharing_sps(other) is None and source.sharing_sps(two) is None


def test_a_description_without_h264_is_refused() -> None:
    with pytest.raises(ValueError, match="no avc1 sample description"):
        with_avc_config(b"\x00\x00\x00\x08free", _record([SPS0], [PPS0]))


def test_pieces_parameter_sets_are_checked_against_what_the_join_needs() -> None:
    from prep.media.smartcut import _check_sets, _Edges

    source, own = _record([SPS0], [PPS0]), _record([SPS1], [PPS1])
    parsed = parse_avc_config(source)
    assert parsed is not None
    matched, separate = _Edges({}), _Edges({}, own_id=1)
    assert _check_sets("head", matched, source, parsed, source) is None
    assert "head's parameter sets differ" in str(
        _check_sets("head", matched, source, parsed, own))
    merged = _check_sets("tail", separate, source, parsed, own)
    assert isinstance(merged, AvcConfig) and merged.sps == (SPS0, SPS1)
    assert _check_sets("tail", _Edges({}, own_id=2), source, parsed, own) == (
        "the re-encoded tail's parameter sets are not under id 2")
    # Edges whose SPS is the source's under their id add their PPS only, pointed at it.
    x264_source = _record([X264_SPS0], [X264_PPS0])
    x264_parsed = parse_avc_config(x264_source)
    assert x264_parsed is not None
    joined = _check_sets("head", separate, x264_source, x264_parsed,
                         _record([X264_SPS1], [X264_PPS1]))
    assert isinstance(joined, AvcConfig) and joined.sps == (X264_SPS0,)
    assert joined.pps == (X264_PPS0, X264_PPS1_ON_SPS0)


@pytest.mark.parametrize(("profile", "options", "expected"), [
    (100, {"cabac": "1", "8x8dct": "1"}, 1),  # High stays High: the 8x8 transform
    (100, {"cabac": "1", "8x8dct": "0"}, None),  # x264 would call CAVLC without it Main
    (100, {"cabac": "0", "8x8dct": "1"}, None),  # already CAVLC: the source's own PPS
    (77, {"cabac": "1", "bframes": "3"}, 1),  # Main stays Main: B-frames
    (77, {"cabac": "1", "bframes": "0", "weightp": "2"}, 1),  # or weighted prediction
    (77, {"cabac": "1", "bframes": "0", "weightp": "0"}, None),  # Main only for CABAC
])
def test_edges_are_coded_with_cavlc_only_where_the_sps_stays_the_sources(
        profile: int, options: dict[str, str], expected: int | None) -> None:
    from prep.media.smartcut import _cavlc_id

    config = parse_avc_config(_record([X264_SPS0], [X264_PPS0]))
    assert config is not None
    assert _cavlc_id(options, replace(config, profile=profile)) == expected
