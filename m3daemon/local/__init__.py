"""This computer's disk: where files live (paths), the sync record, the local scan, file locks."""
