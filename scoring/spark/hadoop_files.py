"""Renames, deletes and small writes on the file system Spark writes to (local, HDFS, s3a...).

PySpark has no public file-system API; Hadoop's FileSystem, reached through the session's JVM
gateway, is the one that understands every path Spark does. This file is the only place that
touches the gateway, and the Spark tests fail here if PySpark moves it.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


class HadoopFiles:
    def __init__(self, spark: SparkSession) -> None:
        self._jvm: Any = spark.sparkContext._jvm
        self._conf: Any = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]

    def _path(self, path: str) -> tuple[Any, Any]:
        hadoop_path = self._jvm.org.apache.hadoop.fs.Path(path)
        return hadoop_path.getFileSystem(self._conf), hadoop_path

    def exists(self, path: str) -> bool:
        fs, hadoop_path = self._path(path)
        return bool(fs.exists(hadoop_path))

    def rename(self, source: str, target: str) -> None:
        fs, source_path = self._path(source)
        if not fs.rename(source_path, self._path(target)[1]):
            raise OSError(f"Could not rename {source} to {target}")

    def delete(self, path: str) -> None:
        fs, hadoop_path = self._path(path)
        fs.delete(hadoop_path, True)

    def write_text(self, path: str, text: str) -> None:
        fs, hadoop_path = self._path(path)
        stream = fs.create(hadoop_path, True)
        try:
            stream.write(bytearray(text.encode()))
        finally:
            stream.close()

    def qualified(self, path: str) -> str:
        """`path` as Hadoop resolves it (a relative local path becomes file:/...)."""
        fs, hadoop_path = self._path(path)
        return str(fs.makeQualified(hadoop_path).toString())
