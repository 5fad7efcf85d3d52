"""The lines of log.txt that tools key on, in the reference's words: the engine writes them, and
parse_test_res.py and results.py read them (also from logs of the original code).

See docs/reference-behaviour.md, "Log file and result block". No imports: the readers load this without torch.
"""

END_OF_TRAINING = "Finish training"
# Dassl >= 0.6.1 prints "Finish training"; older Dassl printed "Finished training".
END_SIGNALS = (END_OF_TRAINING, "Finished training")
RESULT_HEADER = "=> result"  # followed by `* <metric>: <value>` lines
