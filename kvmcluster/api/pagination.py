"""Cursor pagination, newest first: stable while rows are added (a page never repeats or skips one)."""

from rest_framework.pagination import CursorPagination


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"
