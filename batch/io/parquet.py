"""Reading Apache Parquet (.parquet), streamed a batch of records at a time.

`pyarrow.parquet.ParquetFile.iter_batches` decodes one batch (`BATCH_ROWS` records) at a
time, so memory is bounded by a batch and a row group's pages, not by the file. pandas reads
Parquet through the same pyarrow, but whole (`read_parquet` has no chunks).

Where the memory goes (`validate --verb create` of 1,000,000 generated rows, peak RSS, the
CSV of the same rows 161-188 MB in the same runs): importing pyarrow (its libraries, parquet
and compute, ~20 MB of them Python modules) costs ~50 MB before a row is read (10 rows: 128
MB against CSV's 78), which no setting changes; with Arrow's defaults (mimalloc, which keeps
freed pages for reuse; decoding on threads; 16,384-row batches) the peak was 297-300 MB.
Arrow's system allocator (glibc malloc, which gives freed memory back), decoding on the
calling thread and 2,048-row batches bring it to 252-268 MB. What remains grows slowly with
the rows and is native memory: tracemalloc finds the Python objects' peak the CSV's (plus
pyarrow's modules); pre_buffer=False changes nothing; 1,024-row batches gain nothing more.

Every value becomes text as Arrow writes it (`pyarrow.compute.cast` to string): an integer
`12`, a double `1.5` (`12` when whole), a decimal `1.50`, a boolean `true`/`false`, a date
`2024-01-31`, a timestamp `2024-01-31 13:45:00` (fractions of a second only when not zero; a
zoned one ends in `Z`), null ''. A string column is taken exactly (`0012`, `NA`). A column
of lists or structs cannot be a cell: each row with a value there fails, naming the column.

The columns are the schema's field names. Row numbers: `batch.io.tabular` (the 1-based
record number; results.csv's `line` too). A file that is not Parquet, or damaged, is
`InputFileError` with one line, also when the damage shows only in a later batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batch.errors import InputFileError
from batch.io.columns import ColumnSet
from batch.io.opening import open_input
from batch.io.tabular import Record, TabularSource, matched_header

BATCH_ROWS = 2_048  # module docstring: smaller gains nothing, larger holds more Python strings


def column_text(array: Any) -> tuple[list[str], str | None, list[bool] | None]:
    """One column of a batch as cell texts, the problem of the cells whose values cannot be
    text (lists, structs, maps, bytes that are not UTF-8), and which cells have it (None:
    every cell that is not null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = array
    elif pa.types.is_nested(kind):
        return [""] * len(array), f"holds {kind} values, not text", None
    else:
        try:
            text = pc.cast(array, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
                return _binary_text(array.to_pylist())  # only the cells that are not UTF-8
            return [""] * len(array), f"holds {kind} values that cannot be read as text ({exc})", None
        if pa.types.is_timestamp(kind) or pa.types.is_time(kind):
            text = pc.replace_substring_regex(text, pattern=r"\.0+(Z?)$", replacement=r"\1")
    return pc.fill_null(text, "").to_pylist(), None, None


def _binary_text(values: list[bytes | None]) -> tuple[list[str], str | None, list[bool] | None]:
    """A binary column some of whose values are not UTF-8: the others as text, those blank
    with a problem (the cast refuses the whole column for one bad value)."""
    texts, bad = [], []
    for value in values:
        try:
            texts.append("" if value is None else value.decode("utf-8"))
            bad.append(False)
        except UnicodeDecodeError:
            texts.append("")
            bad.append(True)
    return texts, "holds bytes that are not UTF-8 text" if any(bad) else None, bad


class ParquetSource(TabularSource):
    kind = "parquet"

    def describe(self) -> str:
        return "Parquet"

    def _records(self) -> Iterator[Record]:
        import pyarrow as pa

        _use_the_system_allocator()
        number = 0
        with open_input(self.path) as raw:
            try:
                for batch in _parquet_file(self.path, raw).iter_batches(batch_size=BATCH_ROWS, use_threads=False):
                    columns, troubles = [], []
                    for index, array in enumerate(batch.columns):
                        texts, trouble, where = column_text(array)
                        columns.append(texts)
                        if trouble:
                            troubles.append((index, trouble, where or array.is_valid().to_pylist()))
                    for offset, fields in enumerate(zip(*columns, strict=True)):
                        number += 1
                        problem = "; ".join(f"{self._label(index)} {trouble}; give it as text"
                                            for index, trouble, valid in troubles if valid[offset]) or None
                        yield number, list(fields), problem
            except (pa.ArrowException, OSError) as exc:
                raise InputFileError(self.path, f"cannot be read as Parquet past record {number:,} "
                                                f"({str(exc)[:200]}); write the file again") from exc


def _use_the_system_allocator() -> None:
    """Arrow's default pool (mimalloc or jemalloc) keeps the memory of decoded batches after
    they are freed; the system pool's malloc gives it back, so a long file's peak stays that of
    one batch (module docstring). The process reads one input, so setting it for the process is
    safe; `pyarrow.set_memory_pool` is Arrow's documented switch
    (https://arrow.apache.org/docs/python/memory.html#memory-pools)."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def _parquet_file(path: Path, raw: Any) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(raw)
    except (pa.ArrowException, OSError) as exc:
        raise InputFileError(path, f"is not a Parquet file or is damaged ({str(exc)[:200]}); write it again "
                                   "(pandas: DataFrame.to_parquet)") from exc


def open_parquet(path: Path, columns: ColumnSet) -> ParquetSource:
    """Read the schema and match its field names (`InputFileError` otherwise)."""
    with open_input(path) as raw:
        headers = [name.strip() for name in _parquet_file(path, raw).schema_arrow.names]
    match = matched_header(path, headers, columns, where="the Parquet schema's field names")
    return ParquetSource(path, headers, match, header_lines=0)
