"""Notices delivered (SPEC §14): channels, routes, the deliverer, messages and printed notices.

The ladder writes notices into the outbox (`notices`); when the office's settings route a
notice's kind somewhere, the same transaction writes one `deliveries` row per notice ×
recipient × channel (`outbox`). The deliverer (`deliverer`) claims due deliveries like the
scheduler claims timers, sends them outside any transaction (`channels`, signed as each
service requires: `signing`), records every attempt, and retries with back-off until sent
or failed. Nothing here runs inside a firing: a slow or dead receiver never delays one.
"""
