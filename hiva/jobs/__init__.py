"""Running a batch of jobs on this machine or as one Slurm job array (submitit), waiting, and
counting how each ended: the one executor that ``hiva sweep`` (hiva/train/launch.py) and the
shard launchers of ``hiva generate-descriptions`` and ``hiva embed`` (hiva/pipeline/shards.py)
share.

A job is a module-level function and a plain ``spec`` dict (``id``, ``log``, optionally
``lock``; submitit pickles both into a Slurm job); it returns ``{id, status: finished | failed
| skipped | busy, reason, seconds, log}``. Modules: ``settings`` (the ``slurm`` keys and their
checks), ``process`` (one logged subprocess, its lock, why it failed; ``execute_command``, the
job that runs a command), ``tally`` (progress lines and the summary), ``local`` and ``slurm``
(the two launchers), ``launch`` (picking one). submitit is imported only inside ``slurm``'s
functions; nothing here imports torch or numpy.
"""
