"""Holds in agents' own words for the tuning set (`make_evalset.py --hold-variants`).

The tuning set's holds speak the handbook (请您稍等 / 还在为您查询 / 感谢您的耐心等待). Agents ask,
check in and come back in their own words: a check-in that apologises with the return's words
(让您久等了，还在查询中) and goes back to waiting, a return that carries the answer straight away,
thanks said another way (感谢您的等候, 抱歉让您等了这么久). Each hold draws its words here from the
call's own random stream; whether it was asked and thanked stays the main generator's draw, so the
truth (asked / thanked / check-ins) and the verdicts read off it keep their meaning.

This phrase bank is written for the tuning set only; the held-out set has its own, written
independently (tools/make_testset.py), and the two must not be merged.
"""

from __future__ import annotations

# Asking the customer to wait, with the reason (HOLD-ASK passes).
ASKS = [
    "麻烦您等一下，我去系统里查一查。",
    "耽误您一点时间，我帮您核实一下好吗？",
    "我需要查一下记录，您稍等一会儿可以吗？",
    "请您稍候，我帮您调取一下订单。",
    "我这边需要查询一下，需要您稍等一分钟，可以吗？",
    "您稍等片刻，我帮您看看物流信息。",
    "我帮您联系一下仓库，您先稍等一下好吗？",
]
# Going away without asking (HOLD-ASK fails): announcing the look-up is not asking to wait.
UNASKED = ["我看一下。", "嗯，我找找。", "这个我查查。", "好，我这边看看。", "您这个订单号是吧。"]
# Coming back briefly and going away again.
CHECKINS = [
    "不好意思让您久等了，我还在帮您查。",
    "感谢您的耐心，系统还在加载，您再稍等。",
    "抱歉，还需要一点时间，请您先别挂机。",
    "我还在核实，马上就好，您再等我一下。",
    "让您久等了，还在查询中。",
    "您还在线吗？我这边还在查。",
]
# Coming back with thanks for the waiting (HOLD-THANK passes), then the answer.
THANKS = [
    "谢谢您的耐心等待，查到了，",
    "抱歉让您等了这么久，",
    "久等了，",
    "感谢您的等候，",
    "不好意思，让您等了一会儿，",
    "让您久等了，是这样的，",
]
# Coming back straight to the answer (HOLD-THANK fails).
UNTHANKED = ["喂，您好，查到了，", "好了，系统显示", "您好，我这边看到了，", "嗯，是这样的，", "您好，"]
