"""The Go crash report parser over crash texts in the runtime's own format (tests/fixtures/gocrash)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fodc.incident.gocrash import (
    FATAL,
    MAX_FRAMES,
    PANIC,
    SIGNAL,
    UNKNOWN,
    find_report,
    parse_report,
    parse_stack,
    signature,
)

FIXTURES = Path(__file__).parent / "fixtures" / "gocrash"
BANYANDB = "github.com/apache/skywalking-banyandb/"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_a_nil_map_write_is_a_panic_with_its_goroutine_and_creator():
    report = parse_report(find_report(fixture("nil_map_write.txt")))
    assert (report.kind, report.message) == (PANIC, "assignment to entry in nil map")
    assert report.goroutines == 1 and report.states == {"running": 1} and not report.truncated
    failing = report.failing
    assert failing.id == 412 and failing.state == "running"
    assert failing.frames[0].function == BANYANDB + "banyand/measure.(*tsTable).mustAddDataPoints"
    assert (failing.frames[0].file, failing.frames[0].line) == ("/src/banyand/measure/tstable.go", 287)
    assert len(failing.frames) == 3
    assert failing.created_by.function == BANYANDB + "pkg/bus.(*Bus).Subscribe"
    assert failing.created_by.line == 232


def test_the_log_line_before_the_header_is_not_part_of_the_report():
    text = find_report(fixture("nil_map_write.txt"))
    assert text.startswith("panic: assignment") and '"level":"info"' not in text


def test_index_out_of_range_counts_every_goroutine_and_its_wait():
    report = parse_report(fixture("index_out_of_range.txt"))
    assert report.kind == PANIC and report.message == "runtime error: index out of range [5] with length 3"
    assert report.goroutines == 2 and report.states == {"running": 1, "chan receive": 1}
    assert report.failing.id == 87 and len(report.failing.frames) == 5
    assert report.top_frames(1) == [BANYANDB + "banyand/stream.(*blockMetadata).unmarshal (block_metadata.go:161)"]


def test_concurrent_map_writes_is_a_fatal_error_with_all_goroutines():
    report = parse_report(fixture("concurrent_map_writes.txt"))
    assert (report.kind, report.message) == (FATAL, "concurrent map writes")
    assert report.goroutines == 5
    assert report.states == {"running": 1, "chan receive": 1, "select": 1, "IO wait": 1, "semacquire": 1}
    assert report.failing.id == 231 and report.failing.frames[0].function.endswith("(*groupRepo).acquire")


def test_out_of_memory_keeps_the_runtime_line_and_skips_runtime_frames_at_the_top():
    report = parse_report(find_report(fixture("out_of_memory.txt")))
    assert (report.kind, report.message) == (FATAL, "out of memory")
    assert report.details[0].startswith("runtime: out of memory: cannot allocate 4194304-byte block")
    assert report.runtime_stack[0].function == "runtime.throw"
    assert report.failing.id == 519 and report.failing.state == "running"
    assert report.failing.frames[0].function == "runtime.systemstack_switch"
    assert report.failing.frames[1].line == 1176  # fp=/sp=/pc= after the offset are not part of the line
    assert report.top_frames(1)[0].startswith(BANYANDB + "pkg/encoding.(*BytesBlockEncoder).EncodeBlock")
    assert report.states == {"running": 1, "chan receive": 1, "force gc (idle)": 1}
    assert report.failing.wait == "" and parse_report(fixture("index_out_of_range.txt")).goroutines == 2


def test_a_nil_pointer_panic_keeps_its_signal_line():
    report = parse_report(fixture("nil_pointer_signal.txt"))
    assert report.kind == PANIC and "nil pointer dereference" in report.message
    assert report.details == ("[signal SIGSEGV: segmentation violation code=0x1 addr=0x28 pc=0x10b7c5e]",)


def test_a_signal_dump_ends_before_the_registers():
    report = parse_report(fixture("sigquit.txt"))
    assert (report.kind, report.message) == (SIGNAL, "SIGQUIT: quit")
    assert report.details == ("PC=0x4809e1 m=0 sigcode=0",)
    assert report.goroutines == 2 and report.failing.id == 0 and report.failing.state == "idle"


def test_the_last_report_in_a_tail_wins_and_the_restarted_node_log_is_not_in_it():
    tail = "\n".join([fixture("nil_map_write.txt"), '{"level":"info","message":"starting banyand"}',
                      fixture("concurrent_map_writes.txt"), '{"level":"info","message":"starting banyand again"}',
                      '{"level":"info","message":"listening on :17912"}'])
    text = find_report(tail)
    assert text.startswith("fatal error: concurrent map writes") and "starting banyand again" not in text
    assert parse_report(text).goroutines == 5


def test_a_tail_without_a_crash_has_no_report():
    assert find_report('{"level":"info","message":"shutting down"}\nbye\n') is None


@pytest.mark.parametrize("text", [
    "", "\x00\xff garbage \n}}}{{{\n" * 50, "goroutine 1 [running]:\nmain.main()\n",
    "random words\n\tindented\n" * 1000])
def test_garbage_is_kept_raw_with_kind_unknown(text):
    report = parse_report(text)
    assert report.kind == UNKNOWN and report.raw == text and report.truncated and report.failing is None
    assert report.to_json()["kind"] == UNKNOWN


def test_a_report_cut_off_mid_frame_is_truncated_but_keeps_what_it_has():
    whole = fixture("concurrent_map_writes.txt")
    cut = whole[:whole.index("discovery.go:188")]
    report = parse_report(cut)
    assert report.kind == FATAL and report.message == "concurrent map writes" and report.truncated
    assert report.failing.frames[0].function.endswith("(*groupRepo).acquire") and report.failing.frames[0].line is None
    header_only = parse_report("fatal error: concurrent map writes\n")
    assert header_only.truncated and header_only.failing is None and header_only.kind == FATAL


def test_numbers_in_the_message_do_not_split_a_signature():
    frames = parse_report(fixture("index_out_of_range.txt")).failing.frames
    one = signature(PANIC, "runtime error: index out of range [5] with length 3", frames)
    two = signature(PANIC, "runtime error: index out of range [9] with length 4", frames)
    other_place = signature(PANIC, "runtime error: index out of range [5] with length 3", frames[1:])
    assert one == two != other_place


def test_a_goroutine_of_many_frames_keeps_a_bounded_number():
    frames = "".join(f"main.f{i}()\n\t/src/main.go:{i} +0x1\n" for i in range(MAX_FRAMES * 3))
    report = parse_report(f"panic: deep\n\ngoroutine 1 [running]:\n{frames}")
    assert len(report.failing.frames) == MAX_FRAMES and report.failing.elided


def test_a_huge_line_and_many_goroutines_stay_bounded():
    blocks = "".join(f"goroutine {i} [state{i}]:\nmain.f()\n\t/src/main.go:1 +0x1\n\n" for i in range(5000))
    report = parse_report("panic: " + "x" * 100_000 + "\n\n" + blocks)
    assert report.goroutines == 5000 and len(report.states) <= 65 and report.states["other"] > 0
    assert len(report.message) <= 4096


def test_a_stack_field_parses_with_or_without_its_goroutine_line():
    stack = ("main.handler(0xc0000a)\n\t/src/main.go:12 +0x1d\nmain.main()\n\t/src/main.go:20 +0x25\n")
    assert [f.function for f in parse_stack(stack)] == ["main.handler", "main.main"]
    assert [f.line for f in parse_stack("goroutine 7 [running]:\n" + stack)] == [12, 20]
