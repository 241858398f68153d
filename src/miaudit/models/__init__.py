"""miaudit.models"""
