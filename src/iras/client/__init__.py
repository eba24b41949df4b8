"""Talking to a running gateway from the command line: `iras classify` and `iras bench`.

`files` finds the images to send, `gateway` sends one image and turns every answer,
HTTP error or connection failure into an `Answer`, `output` writes answers as a table,
CSV or JSON, and `progress` draws the progress bar. Nothing here imports torch.
"""
