from portal.navigation import ACCOUNT, items_for


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "account_items": []}
    return {
        "nav_items": items_for(user, request.path),
        "account_items": items_for(user, request.path, menu=ACCOUNT),
    }
