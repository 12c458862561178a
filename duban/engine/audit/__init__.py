"""The tamper-evident audit chain: canonical form and hash (`chain`), JSON written a column
at a time (`columns`), many events at once (`batches`), and verification (`verify`).

Every event's hash is SHA-256 over a canonical JSON serialisation of its fields and the
previous event's hash, so editing, dropping or reordering any stored event breaks the
chain from that event on. Callers import these names from here.
"""

from __future__ import annotations

from duban.engine.audit.batches import RECORD_FIELDS as RECORD_FIELDS
from duban.engine.audit.batches import BatchSource as BatchSource
from duban.engine.audit.batches import EventBatch as EventBatch
from duban.engine.audit.batches import batch_hashes as batch_hashes
from duban.engine.audit.batches import batch_of as batch_of
from duban.engine.audit.batches import canonical_batch as canonical_batch
from duban.engine.audit.chain import GENESIS as GENESIS
from duban.engine.audit.chain import HASHED_FIELDS as HASHED_FIELDS
from duban.engine.audit.chain import ORIGIN_KEYS as ORIGIN_KEYS
from duban.engine.audit.chain import canonical as canonical
from duban.engine.audit.chain import event_hash as event_hash
from duban.engine.audit.chain import format_instant as format_instant
from duban.engine.audit.columns import JsonRows as JsonRows
from duban.engine.audit.columns import json_ints as json_ints
from duban.engine.audit.columns import json_texts as json_texts
from duban.engine.audit.columns import json_values as json_values
from duban.engine.audit.columns import scan_json as scan_json
from duban.engine.audit.verify import ChainBreak as ChainBreak
from duban.engine.audit.verify import SliceCheck as SliceCheck
from duban.engine.audit.verify import SliceJoin as SliceJoin
from duban.engine.audit.verify import paused_gc as paused_gc
from duban.engine.audit.verify import verify_chain as verify_chain
