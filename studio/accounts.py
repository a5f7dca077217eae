"""Accounts seen from the money side: one with money history (ledger rows) is never deleted,
since its spend, its jobs and its clips are the record of what was charged. Deleting it
deactivates it instead: it can no longer sign in, and everything it made stays for the
admin. The ledger's and usage's protected foreign keys refuse any other deletion.
"""

from django.contrib.auth.models import User
from django.db import transaction

from studio.models import LedgerEntry


def has_money_history(user: User) -> bool:
    return LedgerEntry.objects.filter(creator=user).exists()


def delete_account(user: User) -> bool:
    """Delete `user`, or deactivate them when they have money history. True when deleted."""
    with transaction.atomic():
        if has_money_history(user):
            type(user).objects.filter(pk=user.pk).update(is_active=False)
            user.is_active = False
            return False
        user.delete()
        return True
