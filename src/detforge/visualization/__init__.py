"""visualization"""
