"""The job's output appears whole or not at all: written beside the target, then renamed onto it."""

from __future__ import annotations

from dataclasses import dataclass

from churn.errors import UserError
from scoring.spark.hadoop_files import HadoopFiles

SUMMARY_FOLDER = "_summary"  # Spark and Arrow readers skip names that start with "_"


@dataclass(frozen=True)
class Output:
    target: str
    staging: str
    overwrite: bool

    @classmethod
    def beside(cls, files: HadoopFiles, target: str, job_id: str, overwrite: bool) -> Output:
        """Checked before any task runs: an existing target needs `overwrite`."""
        qualified = files.qualified(target)
        if files.exists(qualified) and not overwrite:
            raise UserError(f"--out {target} exists; pass --overwrite to replace it.")
        parent, name = qualified.rstrip("/").rsplit("/", 1)
        return cls(qualified, f"{parent}/{name}.staging-{job_id}", overwrite)

    def summary_file(self, name: str) -> str:
        return f"{self.staging}/{SUMMARY_FOLDER}/{name}"

    def commit(self, files: HadoopFiles) -> None:
        """Rename the finished output onto the target (replacing an old one only now)."""
        if not files.exists(self.target):
            files.rename(self.staging, self.target)
            return
        if not self.overwrite:
            raise UserError(f"--out {self.target} appeared while the job ran; kept it as it is.")
        replaced = self.staging.replace(".staging-", ".replaced-")
        files.rename(self.target, replaced)
        files.rename(self.staging, self.target)
        files.delete(replaced)

    def discard(self, files: HadoopFiles) -> None:
        files.delete(self.staging)
