"""``fastprod produce``: real records from files and stdin into Kafka.

``run_produce(ProduceOptions(...))`` reads the inputs (inputs.py: files, globs,
directories, stdin, compressed input), parses them (readers.py: lines, jsonl, csv, tsv,
file), sends them (run.py) and returns a ``Summary`` whose counts account for every record
read; cli.py is the subcommand, console.py its progress and summary output.
"""

from .readers import ReadOptions
from .run import EXIT_CODES, ProduceError, ProduceOptions, Summary, run_produce

__all__ = ["EXIT_CODES", "ProduceError", "ProduceOptions", "ReadOptions", "Summary", "run_produce"]
