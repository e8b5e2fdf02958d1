"""One cycle of the mesh as plain code: the records the topics carry, the steps each agent takes
(recall, solve, judge, decide, review, remember), the prompts, the code extraction and the task
sources. Nothing here imports the Faust app; only `records` touches Faust, for `faust.Record`.
"""
