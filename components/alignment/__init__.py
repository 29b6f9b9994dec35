"""The Alignment page's pieces.

- sft_view.py: the chat template's loss tokens and SFT runs compared.
- arena.py: the preference arena tab (`arena_tab`): class set by code, blind A/B match, vote, reveal.
- arena_results.py: my votes, class totals, Bradley-Terry ratings, win rates, the teacher's view.
- arena_io.py: votes out as TRL preference JSONL, a pairs file read back (`alignment.imported_pairs`).
- dpo_view.py: the DPO tab.
"""
