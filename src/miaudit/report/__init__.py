"""miaudit.report"""
