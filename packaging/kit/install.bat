@echo off
rem Install or update group-ipt from this folder, with no internet. Double-click me.
powershell -NoProfile -ExecutionPolicy Bypass -File "%~dp0install.ps1" %*
pause
