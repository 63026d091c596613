/*
 * data.c - the data section: where experiment directories live, the largest
 * file an upload may bring, each user's quotas and upload rate (SPEC
 * section 6; the defaults are FetchML's: 10 uploads a minute), and what slow
 * transfers may take of the pool (SPEC section 10).
 */
#include "sections.h"

LD_TABLE(, data_table,
         LD_STR_ROW("experiments_dir", LD_PATH, fm_config, data.experiments_dir, NULL,
                    "/var/lib/fetch_ml/experiments", false, NULL),
         LD_INT_ROW("max_file_bytes", fm_config, data.max_file_bytes, 1, 1LL << 40, 1LL << 30),
         LD_INT_ROW("quota_bytes", fm_config, data.quota_bytes, 1, 1LL << 50, 10LL << 30),
         LD_INT_ROW("quota_files", fm_config, data.quota_files, 1, 10000000, 10000),
         LD_INT_ROW("uploads_per_minute", fm_config, data.uploads_per_minute, 1, 100000, 10),
         LD_INT_ROW("concurrent_transfers", fm_config, data.concurrent_transfers, 0, 256, 0),
         LD_INT_ROW("min_transfer_bytes_per_second", fm_config, data.min_transfer_rate, 1,
                    1LL << 30, 65536));
