"""Data: datasets in the project's schema (one loader per source, checksummed downloads), splits
(train / evaluation, and a validation part carved out of train), samplers, synthetic data, and the
exploratory analyses of EDA.ipynb."""
from helpers.data.csv_files import ID_ALIASES, load_csv, read_interactions_csv
from helpers.data.datasets import (
                                   CANONICAL,
                                   DATASETS,
                                   RAW_DIR,
                                   drop_duplicate_pairs,
                                   electronics_canonical,
                                   explode_categories,
                                   load,
                                   recbole_ml100k_dir,
                                   sample_users,
)
from helpers.data.download import DownloadError, download, git_blob_sha1, md5sum
from helpers.data.interactions import csr_pairs, encode_ids, interaction_matrix
from helpers.data.sampling import NegativeSampler, sampled_candidates
from helpers.data.split import (
                                   SPLITS,
                                   cold_start_split,
                                   global_split,
                                   leave_one_out,
                                   make_split,
                                   random_split,
                                   read_split,
                                   resolve_split,
                                   single_interaction_share,
                                   split_summary,
                                   temporal_split,
                                   validation_split,
                                   write_split,
)

__all__ = ["ID_ALIASES", "load_csv", "read_interactions_csv", "CANONICAL", "DATASETS", "RAW_DIR",
           "drop_duplicate_pairs", "electronics_canonical", "explode_categories", "load", "recbole_ml100k_dir",
           "sample_users", "DownloadError", "download", "git_blob_sha1", "md5sum", "csr_pairs", "encode_ids",
           "interaction_matrix", "NegativeSampler", "sampled_candidates", "SPLITS", "cold_start_split",
           "global_split", "resolve_split", "single_interaction_share", "leave_one_out", "make_split",
           "random_split", "read_split", "split_summary", "temporal_split", "validation_split", "write_split"]
