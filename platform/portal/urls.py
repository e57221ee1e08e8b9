from django.contrib.auth import views as auth_views
from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("home/<slug:role>/", views.role_home, name="role_home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("account/api-token/", views.api_token, name="api_token"),
    path("account/password/", views.password_change, name="password_change"),
    path("account/password/changed/", views.password_changed, name="password_changed"),
    path("account/sessions/", views.sessions, name="sessions"),
]
