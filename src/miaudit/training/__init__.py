"""miaudit.training"""
