"""The medical app's words in the access policy (autodiscovered by the access app before the policy loads).

study: view (the de-identified study), upload, ask (questions to the QA model), share and unshare
(grants to a named colleague), review (the burned-in annotation review), train (its de-identified
copy as fine-tuning data), break_glass (read the identified original).
"""

from access.actions import register

register("study", ["view", "upload", "ask", "share", "unshare", "review", "train", "break_glass"])
