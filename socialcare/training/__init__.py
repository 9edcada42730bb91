"""Training and evaluation of the scoring models (torch loops, data readers, metrics).

Development code beside the runtime package: no worker, flow, page or service imports it (the
import drawing's test checks that). `socialcare model train ...` and `socialcare model eval`
reach it with an import inside the command; the shipped models it writes live in
socialcare/scoring/models/, where the runtime reads them.
"""
