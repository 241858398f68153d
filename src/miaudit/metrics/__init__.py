"""miaudit.metrics"""
